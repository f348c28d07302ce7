"""Examples written inside a request ("reverse it: hello -> olleh", "so do becomes undo") are read
(``loradex.examples.examples_in``) and the request is searched by them (``LocalService.search`` →
``loradex.verify``) on real text-zoo adapters in a real registry; words that only look like examples
fall back to the ordinary search."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loradex.examples import as_checked, examples_in, examples_set_apart, words_without_examples
from loradex.service import LocalService
from tests.conftest import text_zoo_service


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("hello -> olleh", [("hello", "olleh")]),
        ("make it shout, abc → ABC.", [("abc", "ABC")]),
        ("uznoj -> xcqrm; may -> pdb", [("uznoj", "xcqrm"), ("may", "pdb")]),
        ('"two words" => "sdrow owt"', [("two words", "sdrow owt")]),
        ("'banana' should come out as 'bnn'", [("banana", "bnn")]),
        ("turn cat into dbu", [("cat", "dbu")]),
        ("so do becomes undo and tie becomes untie", [("do", "undo"), ("tie", "untie")]),
        ("shift letters so a becomes b", [("a", "b")]),
        ('abc => ""', [("abc", "")]),
    ],
)
def test_examples_are_read_from_the_words(text: str, pairs: list[tuple[str, str]]) -> None:
    assert examples_in(text) == pairs


@pytest.mark.parametrize(
    "text",
    [
        "each letter becomes its capital",  # what is acted on, not a sample of it
        "turn it into uppercase",
        "Move every letter one place later in the alphabet; after z, start again at a.",
        "shift +8 letters",
        "reverse then toUpperCase",
        "green-on-black old monitor look",
    ],
)
def test_descriptions_hold_no_examples(text: str) -> None:
    assert examples_in(text) == []


TASKS = ("reverse", "upper", "swapcase", "caesar_1", "append_ing")


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    with text_zoo_service(tmp_path_factory.mktemp("written") / "home", TASKS) as s:
        yield s


@pytest.mark.parametrize(
    ("prompt", "task"),
    [("hello -> olleh", "reverse"), ("I want cat to come out as dbu, so turn cat into dbu", "caesar_1"),
     ("walk → walking, jump → jumping", "append_ing")],
)  # fmt: skip
def test_a_request_with_examples_is_searched_by_them(svc: LocalService, prompt: str, task: str) -> None:
    hits = svc.search(prompt, k=3)
    assert hits[0].adapter["name"] == task and hits[0].score == 1.0
    assert "reproduces" in hits[0].why and hits.read is not None and hits.read.startswith("examples: ")
    assert svc.search(prompt, k=3, mode="text").read is None  # a mode asked for by name reads words only


def test_words_that_are_no_examples_fall_back_to_the_ordinary_search(svc: LocalService) -> None:
    odd = svc.search("qqqq -> zzzzzzzzzz", k=3)  # no adapter writes that: the words are searched
    assert odd and all("reproduces" not in h.why for h in odd) and odd.read is None
    words = svc.search("write the string backwards", k=3)
    assert words[0].adapter["name"] == "reverse" and words.read is None


def test_examples_that_cannot_be_run_leave_the_words_to_search(svc: LocalService) -> None:
    # the text zoo's base reads no space: the samples cannot be run, and their own words would mislead
    prompt = "shouting mode: 'Hello there' -> 'HELLO THERE'"
    assert examples_set_apart(prompt) and words_without_examples(prompt) == "shouting mode"
    hits = svc.search(prompt, k=3)
    assert hits.read == "shouting mode" and all("reproduces" not in h.why for h in hits)
    assert [h.adapter["id"] for h in hits] == [h.adapter["id"] for h in svc.search("shouting mode", k=3)]
    assert hits[0].adapter["name"] == "upper"
    # an example in plain words is part of what the request says: the whole request is searched then
    plain = 'turn a phrase like hello there into "HELLO THERE"'
    assert not examples_set_apart(plain) and not examples_set_apart("write it in capitals")


def test_a_one_letter_example_is_checked_on_a_run_of_its_letter(svc: LocalService) -> None:
    assert as_checked([("a", "b"), ("ab", "bc"), ("a", ""), ("1", "2")]) == [
        ("aaaa", "bbbb"), ("ab", "bc"), ("a", ""), ("1", "2")]  # fmt: skip
    hits = svc.search("change every letter to the one right after it, so a becomes b", k=3)
    assert hits.read == "examples: a → b"  # what was read is shown as written
    assert hits[0].adapter["name"] == "caesar_1" and hits[0].score == 1.0 and "reproduces 1/1" in hits[0].why
    told = svc.search("", k=2, examples=[("a", "A"), ("b", "B")])  # given one letter at a time, too
    assert {h.adapter["name"] for h in told} == {"upper", "swapcase"} and all(h.score == 1.0 for h in told)


def test_generate_uses_the_examples_written_in_a_description(svc: LocalService) -> None:
    made = svc.generate("this one: hello -> olleh, abc -> cba", family="zoo-text", method="analogy")
    assert made.lineage["examples"] == [["hello", "olleh"], ["abc", "cba"]] and "candidates" in made.lineage
    out = svc.compose("reverse", adapters=[int(made.adapter["id"])], inputs=["hello", "abc"], strategy="linear")
    assert out.outputs == ["olleh", "cba"]
    # words the base cannot read (a space, in the text zoo) are not taken for examples, nor refused
    spaced = svc.generate('flip it, like "hello world" -> "dlrow olleh"', family="zoo-text", method="analogy")
    assert spaced.lineage["examples"] == [] and "candidates" not in spaced.lineage


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("read from right to left, so hello would come out as olleh", [("hello", "olleh")]),
        ("all small, so if I write HeLLo it gives back hello", [("HeLLo", "hello")]),
        ("one of each run, e.g. bookkeeper should become bokeper", [("bookkeeper", "bokeper")]),
        ("dashes between letters, so abc comes out as a-b-c.", [("abc", "a-b-c")]),
        ("feed it cat, get CAT", [("cat", "CAT")]),
        ("I type dog and want god back", [("dog", "god")]),
        ("turn a verb like jump into jumping", [("jump", "jumping")]),
        ("something that makes lemon into nomel", [("lemon", "nomel")]),
        ("I want 'WhIsPer' to just be 'whisper'", [("WhIsPer", "whisper")]),
        ("sorted, so lemon reads elmno", [("lemon", "elmno")]),
        ("apple ought to turn out as pple", [("apple", "pple")]),
        ("each letter one back, so b goes to a", [("b", "a")]),
        ("so for 'keyboard' I'd expect 'dkeyboar', the last letter in front", [("keyboard", "dkeyboar")]),
        ('for "abc", I want "cba"', [("abc", "cba")]),
        # labelled sides, equals signs, other arrows, a second sample with its verb left out
        ("in: zebra out: afcsb", [("zebra", "afcsb")]),
        ("input planets, expected output lanetsp", [("planets", "lanetsp")]),
        ("If the input is letter, the output should be letring.", [("letter", "letring")]),
        ("'wild' in, 'wildcat' out -- same ending for any word", [("wild", "wildcat")]),
        ("f('pirate') == 'pzrztz'", [("pirate", "pzrztz")]),
        ("dbl every letter so cat = ccaatt", [("cat", "ccaatt")]),
        ("dog ↦ qdcnf", [("dog", "qdcnf")]),
        ("the half-alphabet swap (a<->n, b<->o ...)", [("a", "n"), ("b", "o")]),
        ("from elephant I want epn", [("elephant", "epn")]),
        ("for math the answer is m+a+t+h", [("math", "m+a+t+h")]),
        ("orange should come out as aegnor, cabbage as aabbceg", [("orange", "aegnor"), ("cabbage", "aabbceg")]),
        ("given 'hello' return 'gdkkn'; given 'apple' return 'zookd'", [("hello", "gdkkn"), ("apple", "zookd")]),
        ("so b becomes a and a loops round to z", [("b", "a")]),  # "and a loops" is no second sample
    ],
)
def test_examples_written_in_prose_are_read(text: str, pairs: list[tuple[str, str]]) -> None:
    assert examples_in(text) == pairs


@pytest.mark.parametrize(
    "text",
    [
        "Hacker-movie green: every colour becomes a shade of green.",  # an article, not the letter a
        "Arrange the letters from z to a.",
        "Start by making sure to add the prefix 're'. Once that is done, rewrite it in all caps.",
        "I want the model to be able to draw a heart",
        "The result is the input string turned back to front.",
        "the same characters but read from right to left",
        "Brightness is shown as temperature: dark violet for cool, hot yellow for bright areas.",
        "for each letter I want the next one in the alphabet",
        "for example I want it in caps",
        "sorted(s, reverse=True) joined back into a str",  # a setting, not a sample
        "style hit = judge sees the palette",  # a single spaced equals sign in the middle of prose
        "caesar with k = 13",
        "input is lowercase, output is uppercase",  # both sides name what is acted on
    ],
)
def test_prose_without_examples_gives_none(text: str) -> None:
    assert examples_in(text) == []


def test_no_zoo_description_or_paraphrase_is_read_as_an_example() -> None:
    """Every canonical description and paraphrase of both zoos says what to do without a sample:
    none may be read as one (a misread pair costs a run of every candidate, and a reproduced one
    would replace the words' answer)."""
    import json

    from tests.conftest import REPO

    texts = []
    for zoo in ("text", "image"):
        for task in json.loads((REPO / "benchmarks" / "zoo" / zoo / "manifest.json").read_text())["tasks"]:
            texts += [task["canonical"], *(p["text"] for p in task.get("paraphrases", []))]
    assert len(texts) > 1000
    assert [(t, examples_in(t)) for t in texts if examples_in(t)] == []


def test_words_without_examples_keep_what_the_request_says() -> None:

    assert (
        words_without_examples("chop off the first letter, bright should turn into right")
        == "chop off the first letter"
    )
    assert words_without_examples("hello -> olleh") == "hello -> olleh"  # nothing else: kept whole
    assert words_without_examples("write it backwards") == "write it backwards"


def test_a_misread_pair_does_not_hide_a_real_example(svc: LocalService) -> None:
    # "qqq becomes zzzzzz" is the shorter pair; no adapter writes it. Screening every candidate on
    # it first would leave none for "walk becomes walking".
    prompt = "so qqq becomes zzzzzz and walk becomes walking"
    assert examples_in(prompt) == [("qqq", "zzzzzz"), ("walk", "walking")]
    hits = svc.search(prompt, k=3)
    assert hits[0].adapter["name"] == "append_ing" and hits[0].score == 0.5
    assert hits.read == "examples: qqq → zzzzzz; walk → walking"


def test_among_adapters_that_reproduce_the_examples_the_one_doing_as_many_steps_as_asked_comes_first(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tasks = ("sortdesc__then__interleave_dot", "dedupe__then__interleave_dot", "interleave_dot")
    with text_zoo_service(tmp_path_factory.mktemp("steps") / "home", tasks) as s:
        one = s.search("so usa would come out as u.s.a", k=3)
        assert [h.score for h in one] == [1.0, 1.0, 1.0]  # all three write u.s.a for usa
        assert one[0].adapter["name"] == "interleave_dot"
        two = s.search("drop repeated letters, then put dots between them, so usa would come out as u.s.a", k=3)
        assert two[0].adapter["name"] == "dedupe__then__interleave_dot" and two[0].score == 1.0
