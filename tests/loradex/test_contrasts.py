"""Alternatives a request turns down are left out of what search embeds (``loradex.contrasts``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loradex.contrasts import without_contrasts
from loradex.service import LocalService
from tests.conftest import text_zoo_service


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("not the capitalising one - I want everything in small letters", "I want everything in small letters"),
        ("brownish tint with stripes - horizontal ones, not vertical or diagonal",
         "brownish tint with stripes - horizontal ones"),
        ("stripes, but running up and down, not side to side and not slanted", "stripes, but running up and down"),
        ("lowercase rather than uppercase", "lowercase"),
        ("instead of uppercase, make everything lowercase", "make everything lowercase"),
        ("shift letters forward rather than back", "shift letters forward"),
        ("not upper but lower case", "lower case"),
        ("sort, but not descending", "sort"),
        ("reverse the string, not the words", "reverse the string"),
        ("make it colourless, not colourful", "make it colourless"),
    ],
)  # fmt: skip
def test_turned_down_alternatives_are_left_out(text: str, read: str) -> None:
    assert without_contrasts(text) == read


@pytest.mark.parametrize(
    "text",
    [
        "keep the letters that are not vowels",  # "not" inside a clause is what is asked
        "characters that do not repeat",
        "do not change the order, just add ing",
        "no colour at all",  # absence asked for
        "I don't want any colour",
        "without stripes, only the sepia tone",
        "not reversed",  # nothing would be left
        "nothing fancy: reverse it",
    ],
)
def test_what_is_asked_stays(text: str) -> None:
    assert without_contrasts(text) == text


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    with text_zoo_service(
        tmp_path_factory.mktemp("contrasts") / "home", ("upper", "lower", "swapcase", "reverse")
    ) as s:
        yield s


def test_search_reads_what_is_wanted(svc: LocalService) -> None:
    prompt = "not the uppercase one - I want everything in small letters"
    hits = svc.search(prompt, k=4)
    assert hits.read == "I want everything in small letters"  # the results say what was searched for
    assert hits[0].adapter["name"] == "lower"
    plain = svc.search("I want everything in small letters", k=4)
    assert [h.adapter["id"] for h in hits] == [h.adapter["id"] for h in plain]
    assert [h.score for h in hits] == pytest.approx([h.score for h in plain])
    assert svc.search("everything in small letters", k=4).read is None  # nothing turned down: nothing to say


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("can it draw a full round moon, not a crescent?", ["a crescent"]),
        ("a complete circle rather than a sliver", ["a sliver"]),
        ("not the capitalising one - I want everything in small letters", ["the capitalising one"]),
        ("keep the letters that are not vowels", []),  # what is asked, not an alternative
        ("no colour at all", []),
    ],
)
def test_the_alternatives_a_request_turns_down(text: str, spans: list[str]) -> None:
    from loradex.contrasts import turned_down

    assert turned_down(text) == spans


def test_the_alternative_turned_down_by_name_cannot_fit(tmp_path_factory: pytest.TempPathFactory) -> None:
    from pathlib import Path

    zoo = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "image" / "adapters"
    folders = [zoo / n for n in ("crescent", "star", "heart")]
    if not all(f.is_dir() for f in folders):
        pytest.skip("the zoos are not built")
    s = LocalService.open(tmp_path_factory.mktemp("turned_down") / "home")
    try:
        assert s.ingest(folders).count("ingested") == 3
        ids = {r["name"]: int(r["id"]) for r in s.list()}
        assert s.searcher._refused("a full round moon, not a crescent", list(ids.values())) == {ids["crescent"]}
        assert s.searcher._refused("a full round moon", list(ids.values())) == set()
        wanted = s.search("a crescent moon, not a star", 3)
        assert wanted[0].adapter["name"] == "crescent" and wanted.nothing_fits is not True
    finally:
        s.close()
