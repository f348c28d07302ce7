"""Search and generation read number words as digits (``digits_for_number_words`` in ``readable_for``):
adapters are described with digits, people write numbers out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loradex.number_words import digits_for_number_words
from loradex.reading import readable_for, readable_prompt
from loradex.service import LocalService

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "text" / "adapters"


@pytest.mark.parametrize(("text", "read"), [
    ("shift every letter by eight places", "shift every letter by 8 places"),
    ("rotate by thirteen", "rotate by 13"),
    ("push every letter twelve forward", "push every letter 12 forward"),
    ("twenty-one and twenty one and twenty", "21 and 21 and 20"),
    ("two hundred and five, ninety-nine", "205, 99"),
    ("zero", "0"),
    ("Eight, NINE. Seventeen!", "8, 9. 17!"),  # any casing; punctuation kept
    ("an eight-bit look", "an 8-bit look"),  # hyphenated compounds keep their hyphen
    ("a caesar cipher with a key of eighteen", "a caesar cipher with a key of 18"),  # "a"/"an" stay
])  # fmt: skip
def test_cardinals_become_digits(text: str, read: str) -> None:
    assert digits_for_number_words(text) == read


@pytest.mark.parametrize(("text", "read"), [
    ("shift back by one letter", "shift back by 1 letter"),  # before a unit
    ("move it one place", "move it 1 place"),
    ("a one-letter shift", "a 1-letter shift"),
    ("Apply a Caesar shift of one.", "Apply a Caesar shift of 1."),  # after "of" / "by"
    ("rotate left by one", "rotate left by 1"),
    ("then shift each letter back one", "then shift each letter back 1"),  # after a direction, clause ends
    ("keep one in four", "keep 1 in 4"),  # a ratio
    ("take one out of every two", "take 1 out of every 2"),
    ("one hundred", "100"),
])  # fmt: skip
def test_one_becomes_1_where_it_counts(text: str, read: str) -> None:
    assert digits_for_number_words(text) == read


@pytest.mark.parametrize("text", [
    "could you find me the one that takes my text",
    "change every letter to the one right after it",
    "one of them",
    "no one wants that",
    "every other one",
    "collapse runs of the same letter into one",
    "one by one",
    "one's own letters",
    "keep the left one",
    "I left one apple",
    "each one, please",
    "one another",
])  # fmt: skip
def test_one_as_a_pronoun_is_kept(text: str) -> None:
    assert digits_for_number_words(text) == text


@pytest.mark.parametrize("text", [
    "weight often someone tone canine eighties",  # number words inside other words
    "keep every third letter, starting with the first",  # ordinals: descriptions spell them out
    "a hundred years ago",  # "a" is not a number
    "already 8 and 13",
])  # fmt: skip
def test_other_words_are_kept(text: str) -> None:
    assert digits_for_number_words(text) == text


def test_readable_for_reads_digits_and_readable_prompt_keeps_words() -> None:
    """What is embedded (``readable_for``) has digits; the cleaned text that is stored and shown
    (``readable_prompt``) keeps the user's words."""
    assert readable_for(object(), "✨ shift by eight places ✨") == "shift by 8 places"
    assert readable_prompt("✨ shift by eight places ✨") == "shift by eight places"


@pytest.fixture(scope="module")
def siblings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """Adapters that differ by a number: each described with its digits ("Shift each letter forward by
    12 in the alphabet …", "Keep every fourth character, starting with the first")."""
    tasks = ["caesar_10", "caesar_11", "caesar_12", "caesar_13", "caesar_14", "keep_2", "keep_3", "keep_4",
             "keepfrom_2", "keepfrom_4", "repeat_2", "repeat_4", "rotl_4", "rotr_4"]  # fmt: skip
    if not all((ZOO / t).is_dir() for t in tasks):
        pytest.skip("the text zoo is not built")
    svc = LocalService.open(tmp_path_factory.mktemp("numwords") / "home")
    assert svc.ingest([ZOO / t for t in tasks]).count("ingested") == len(tasks)
    yield svc
    svc.close()


@pytest.mark.parametrize(("prompt", "want"), [
    ("push every letter twelve forward, z wraps back to a", "caesar_12"),  # read as words: caesar_11
    ("keep one letter in four, starting from the first", "keep_4"),  # read as words: keepfrom_4
])  # fmt: skip
def test_a_number_word_finds_the_adapter_described_with_its_digits(siblings: LocalService, prompt: str,
                                                                   want: str) -> None:  # fmt: skip
    assert siblings.search(prompt, k=1)[0].adapter["name"] == want


def test_words_and_digits_give_the_same_results(siblings: LocalService) -> None:
    words = siblings.search("shift every letter by eleven places", k=5)
    digits = siblings.search("shift every letter by 11 places", k=5)
    assert [h.adapter["id"] for h in words] == [h.adapter["id"] for h in digits]
    assert [h.scores for h in words] == [h.scores for h in digits]
