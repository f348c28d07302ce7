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
