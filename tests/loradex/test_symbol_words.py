"""Symbols named in words get their symbol beside the name before a prompt is embedded
(``loradex.symbol_words``): descriptions quote the symbol ("Insert '-' between …"), people name it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loradex.search import readable_for
from loradex.service import LocalService
from loradex.symbol_words import symbols_for_names
from tests.conftest import text_zoo_service


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("put a hyphen between all the letters", "put a hyphen '-' between all the letters"),
        ("a pound sign in place of every vowel", "a pound sign '#' in place of every vowel"),
        ("separate them with full stops", "separate them with full stops '.'"),
        ("Asterisks for vowels", "Asterisks '*' for vowels"),
        ("join with underscores, then tildes", "join with underscores '_', then tildes '~'"),
    ],
)
def test_names_get_their_symbol(typed: str, read: str) -> None:
    assert symbols_for_names(typed) == read


@pytest.mark.parametrize(
    "text",
    [
        "sepia polka dots",  # dots, stars and plus are also patterns, shapes and "and"
        "draw a star",
        "night grade plus grid overlay",
        "a dash '-' between letters",  # the symbol is already there
        "dashboard, periodic, hyphenated",  # whole words only
    ],
)
def test_what_is_left_as_typed(text: str) -> None:
    assert symbols_for_names(text) == text


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    tasks = ("interleave_dash", "interleave_dot", "delete_h", "vowels_hash", "vowels_h", "append_end", "dedupe")
    with text_zoo_service(tmp_path_factory.mktemp("symbols") / "home", tasks) as s:
        yield s


def test_search_finds_the_adapter_of_the_symbol_named(svc: LocalService) -> None:
    assert readable_for(svc.text_encoder, "put a hyphen between all the letters").endswith(
        "hyphen '-' between all the letters"
    )
    for prompt, task in [
        ("put a hyphen between all the letters", "interleave_dash"),
        ("put a full stop between each letter", "interleave_dot"),
        ("a pound sign in place of every vowel", "vowels_hash"),
    ]:
        assert svc.search(prompt, k=3, mode="text")[0].adapter["name"] == task, prompt


def test_a_symbol_refused_is_not_written_beside_its_name() -> None:
    from loradex.symbol_words import symbols_for_names

    assert symbols_for_names("prefix un, no hyphen") == "prefix un, no hyphen"
    assert symbols_for_names("join them without any commas") == "join them without any commas"
    assert symbols_for_names("not a dash but a hyphen") == "not a dash but a hyphen '-'"
