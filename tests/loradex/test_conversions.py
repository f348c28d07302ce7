"""Conversions asked the other way round (``loradex.conversions``, ``Searcher._turned``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loradex.conversions import conversion, reversed_by
from loradex.service import LocalService
from tests.conftest import service_with

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"
ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo"


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("Rewrites modern English in the style of Shakespeare's plays, with thee and thou.",
         ("modern English", "Shakespeare's plays")),
        ("Turns questions about a table into SQL queries.", ("questions about a table", "SQL queries")),
        ("I want to translate my sentences from english to spanish.", ("english", "spanish")),
        ("Translate Shakespeare's lines into plain modern English so I can follow them",
         ("Shakespeare's lines", "plain modern English")),
        ("natural language question -> SQL query", ("natural language question", "SQL query")),
        ("Shift each letter forward by 1, wrapping around from z to a.", None),  # no word on either side
        ("A polka-dot pattern over the whole image.", None),
    ],
)  # fmt: skip
def test_the_conversion_a_text_names(text: str, pair: tuple[str, str] | None) -> None:
    assert conversion(text) == pair


@pytest.fixture(scope="module")
def encode() -> object:
    from encoders.text import get_text_encoder

    return get_text_encoder().encode


def test_a_pair_swapped_is_read_as_the_other_way_round(encode: object) -> None:
    adapters = [(1, ("modern English", "Shakespeare's plays")), (2, ("questions about a table", "SQL queries"))]
    assert reversed_by(("Shakespeare's lines", "plain modern English"), adapters, encode) == {1}
    assert reversed_by(("SQL queries", "questions about my table"), adapters, encode) == {2}
    assert reversed_by(("my modern English essay", "Shakespearean verse"), adapters, encode) == set()  # the same way
    assert reversed_by(("hello", "olleh"), adapters, encode) == set()  # nothing to do with either
    assert reversed_by(("a", "b"), [], encode) == set()


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    folders = [SAMPLES / "shakespeare_gpt2", ZOO / "text" / "adapters" / "reverse", ZOO / "text" / "adapters" / "upper"]
    with service_with(tmp_path_factory.mktemp("conversions") / "home", folders) as s:
        yield s


def test_search_says_nothing_fits_a_conversion_asked_the_other_way(svc: LocalService) -> None:
    ids = {r["name"]: int(r["id"]) for r in svc.list()}
    prompt = "Translate Shakespeare's lines into plain modern English so I can follow Hamlet"
    described = {i: str(svc.registry.get(i)["description"]) for i in ids.values()}
    assert svc.searcher._turned(prompt, described) == {ids["Shakespeare GPT-2"]}
    hits = svc.search(prompt, 3)
    assert hits.nothing_fits is True and hits.reason == "Shakespeare GPT-2 converts the other way round"
    assert hits.verdict().startswith("Nothing in the registry does this: Shakespeare GPT-2 converts")
    same_way = svc.search("rewrite my modern English essay into Shakespearean verse", 3)
    assert same_way[0].adapter["name"] == "Shakespeare GPT-2" and same_way.nothing_fits is not True
    assert same_way.reason is None and same_way.verdict() == ""
