"""The settings a request names against adapters that differ only in them (``loradex.params``), and what
search does with them (``Searcher._ranked``: lowered when a sibling has the setting; nothing fits when
none does)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loradex.params import families, literals, mismatched, numbers, template
from loradex.service import LocalService
from tests.conftest import names_without_prior, text_zoo_service


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("repeat each char 5x", {5}),
        ("keep every 5th character", {5}),
        ("rot13 the clue", {13}),
        ("advance every letter by a dozen positions", {12}),
        ("shift by eight", {8}),  # number words are read as digits first
        ("say each of those twice", {2}),
        ("keep the 1st, 3rd, 5th... characters", {1, 3, 5, 2}),  # a run in even steps names its step
        ("Keep every second character, starting with the first.", {2, 1}),
        ("First reverse it, then repeat each letter", set()),  # "first" orders the steps
        ("move the last letter to the front", {1}),
        ("final char to the start", {1}),
        ("the last letters to the front", set()),  # how many is not said
        ("is there one that swaps case", set()),  # "one" as a pronoun
        ("double each letter b4 sorting", {2}),  # "b4" is no number
        ("version 1.5 of the model", set()),
        ("ISO 3200", set()),
    ],
)
def test_numbers_named(text: str, want: set[int]) -> None:
    assert numbers(text) == want


def test_literals_named_and_samples_left_out() -> None:
    assert literals("swap each vowel for the letter q") == {"q"}
    assert literals("prefix 'anti' to a word") == {"anti"}
    assert literals("join characters with ',' as separator") == {","}
    assert literals("Between each two letter I want an underline") == set()  # "letter I want": the pronoun
    assert literals("'wild' in, 'wildcat' out", skip={"wild", "wildcat"}) == set()


def test_families_are_descriptions_that_differ_only_in_settings() -> None:
    texts = ["Repeat each character 2 times.", "Repeat each character 4 times.", "Reverse the string.",
             "Replace every vowel with 'z'.", "Replace every vowel with '#'.", "Reverse the string."]  # fmt: skip
    got = families(texts)
    assert set(got) == {template(texts[0]), template(texts[3])}
    assert got[template(texts[0])] == ["Repeat each character 2 times.", "Repeat each character 4 times."]
    assert template("Keep every fourth character, starting with the first.") == template(
        "Keep every second character, starting with the first."
    )


def test_mismatched_and_unmet() -> None:
    described = {1: "Repeat each character 2 times.", 2: "Repeat each character 4 times.", 3: "Reverse the string.",
                 4: "Crisp 16-bit pixel art."}  # fmt: skip
    known = families([*described.values(), "Repeat each character 3 times."])
    assert mismatched("repeat each character 3 times", described, known) == ({1, 2}, set())  # 3 exists
    assert mismatched("repeat each char 5x", described, known) == ({1, 2}, {1, 2})  # no sibling repeats 5 times
    assert mismatched("repeat each character 4 times", described, known) == ({1}, set())
    assert 4 not in mismatched("8-bit pixel art", described, known)[0]  # of no family: never judged
    assert mismatched("reverse it", described, known) == (set(), set())  # no setting asked


TASKS = ("repeat_2", "repeat_3", "repeat_4", "vowels_z", "vowels_b", "keepfrom_2", "keepfrom_3", "keepfrom_4")


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    with text_zoo_service(tmp_path_factory.mktemp("params") / "home", TASKS) as s:
        yield s


def test_a_setting_no_adapter_has_is_said_to_fit_nothing(svc: LocalService) -> None:
    for prompt in ("repeat each char 5x", "swap each vowel for the letter q"):
        assert svc.search(prompt, k=3).nothing_fits is True, prompt
    for prompt in ("repeat each char 3x", "swap each vowel for the letter z"):
        hits = svc.search(prompt, k=3)
        assert hits.nothing_fits is not True and hits[0].adapter["name"] in ("repeat_3", "vowels_z"), prompt


def test_siblings_with_another_setting_are_lowered(svc: LocalService, monkeypatch: pytest.MonkeyPatch) -> None:
    before, after = names_without_prior(svc, "quadruple every character", 3, monkeypatch, "SETTING_PENALTY")
    assert after[0] == "repeat_4" and before[0] != "repeat_4", (before, after)


@pytest.mark.parametrize(
    ("text", "want", "quoted"),
    [
        ("Attach the prefix anti- to the word", {"anti"}, "Attach the prefix 'anti' to the word"),
        ("the suffix -ly please", {"ly"}, "the suffix 'ly' please"),
        ("un- prefix on every word", {"un"}, "'un' prefix on every word"),
        ("put dis in front, like like becomes dislike", {"dis"}, "put 'dis' in front, like like becomes dislike"),
        ("just slap ed on, no grammar rules", {"ed"}, "just slap 'ed' on, no grammar rules"),
        ("add the word cat at the end", {"cat"}, "add the word 'cat' at the end"),
        ("Need non glued onto the front of it", {"non"}, "Need 'non' glued onto the front of it"),
        ("tack on ing", {"ing"}, "tack on 'ing'"),
        ("Prepend pre to the word", {"pre"}, "Prepend 'pre' to the word"),
        ("add the letters e n d to the end", {"end"}, "add the letters 'end' to the end"),  # spelled out
        ("remove the letters a and e", set(), None),  # two letters, not one affix
        # words that are no affix: pronouns, the letters moved by a rotation, a place
        ("add it to the end", set(), None),
        ("move the first two letters to the end", set(), None),
        ("stick them on the back", set(), None),
        ("get 'pro' tacked on after it", {"pro"}, None),
        ("Insert a hyphen '-' between the letters, no dot '.'", {"-"}, None),  # an absence names no setting
    ],
)
def test_affixes_named_without_quotes(text: str, want: set[str], quoted: str | None) -> None:
    from loradex.params import quote_affixes

    assert literals(text) == want
    assert quote_affixes(text) == (text if quoted is None else quoted)


def test_a_chain_with_a_step_the_registry_varies_is_judged() -> None:
    """A two-step description whose step comes with other settings elsewhere names a setting, even
    when no other description shares its whole shape; a one-off number ("16-bit") does not."""
    from generators.steps import split_steps

    texts = ["Shift each letter forward by 13, then reverse the string.", "Shift each letter forward by 2.",
             "Shift each letter forward by 5.", "Reverse the string, then convert everything to uppercase.",
             "Crisp 16-bit pixel art."]  # fmt: skip
    known = families(texts, split_steps)
    assert template(texts[0]) in known and template(texts[3]) not in known and template(texts[4]) not in known
    assert families(texts) == {template(texts[1]): sorted(texts[1:3])}  # without steps: the one-step family only
    described = dict(enumerate(texts))
    assert mismatched("Reverse the word, then shift each letter by 3", described, known)[1] == {0, 1, 2}
    assert mismatched("shift every letter by 13 and then reverse it", described, known)[1] == {1, 2}  # 0 does it


def test_each_step_asked_is_judged_on_its_own() -> None:
    from generators.steps import split_steps

    described = {1: "Insert '-' between the characters.", 2: "Insert '.' between the characters.",
                 3: "Repeat each character 2 times, then rotate the string left by 1."}  # fmt: skip
    known = families([*described.values(), "Repeat each character 3 times."], split_steps)
    asked = "dashes '-' between letters, then add 'ed' at the end"  # the adapter inserting '-' adds no 'ed'
    assert mismatched(asked, described, known, split=split_steps)[1] == {1, 2}
    assert mismatched(asked, described, known) == ({2}, set())  # read whole, '-' is one of the literals asked
    assert mismatched("put '-' between the letters", described, known, split=split_steps) == ({2}, set())
    # numbers are read whole: "[::-1]" in the second step judges no shift of the first
    described = {1: "Shift each letter forward by 13, then reverse the string."}
    known = families([*described.values(), "Shift each letter forward by 2."], split_steps)
    assert mismatched("ROT13 it first, then reverse the result with [::-1]", described, known, split=split_steps) == (
        set(),
        set(),
    )
    # a sample the examples reader missed is one more literal of the same step, not a setting to match
    asked, known = "I want add 'er' at end of word, for 'teach' make 'teacher'.", families(["Append 'er' to the end."])
    assert mismatched(asked, {1: "Append 'er' to the end."}, {template("Append 'er' to the end."): ["x"]}) == (
        set(),
        set(),
    )


def test_named_finds_the_member_a_request_singles_out() -> None:
    from loradex.params import named

    described = {1: "Repeat each character 2 times.", 2: "Repeat each character 4 times.", 3: "Crisp 16-bit pixel art.",
                 4: "Replace every vowel with 'z'.", 5: "Replace every vowel with '#'."}  # fmt: skip
    known = families(described.values())
    assert named("say each letter twice", described, known) == {1}
    assert named("vowels become the letter z", described, known) == {4}
    assert named("16-bit pixel art", described, known) == set()  # of no family: never singled out
    assert named("repeat it", described, known) == set()  # no setting asked
    assert named("repeat each letter 4 times, then 5 more, then 6, then 7", described, known) == set()  # 1 of 4


def test_a_request_that_singles_an_adapter_out_is_not_told_nothing_fits(
    svc: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the calibrated signals alone would say nothing fits, a best hit that names the setting asked
    (or goes the way asked) still fits; a family without the setting still fits nothing."""
    from loradex.relevance import Calibration

    monkeypatch.setattr(Calibration, "nothing_fits", lambda self, relevances, best_text=None: True)
    for prompt, name in (("say every letter three times", "repeat_3"), ("vowels to the letter z", "vowels_z")):
        hits = svc.search(prompt, k=3)
        assert hits[0].adapter["name"] == name and hits.nothing_fits is False, prompt
    five = svc.search("repeat each char 5x", k=3)
    assert five.nothing_fits is True  # no sibling repeats 5 times
    assert five.reason and "differ only in a setting" in five.reason and five.reason in five.verdict()
    vague = svc.search("make it look expensive", k=3)
    assert vague.nothing_fits is True and vague.reason is None  # nothing singled out: no more to say
