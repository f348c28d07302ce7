"""Examples written inside a request ("reverse it: hello -> olleh", "so do becomes undo") are read
(``loradex.examples.examples_in``) and the request is searched by them (``LocalService.search`` →
``loradex.verify``) on real text-zoo adapters in a real registry; words that only look like examples
fall back to the ordinary search."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loradex.examples import examples_in
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


def test_generate_uses_the_examples_written_in_a_description(svc: LocalService) -> None:
    made = svc.generate("this one: hello -> olleh, abc -> cba", family="zoo-text", method="analogy")
    assert made.lineage["examples"] == [["hello", "olleh"], ["abc", "cba"]] and "candidates" in made.lineage
    out = svc.compose("reverse", adapters=[int(made.adapter["id"])], inputs=["hello", "abc"], strategy="linear")
    assert out.outputs == ["olleh", "cba"]
    # words the base cannot read (a space, in the text zoo) are not taken for examples, nor refused
    spaced = svc.generate('flip it, like "hello world" -> "dlrow olleh"', family="zoo-text", method="analogy")
    assert spaced.lineage["examples"] == [] and "candidates" not in spaced.lineage
