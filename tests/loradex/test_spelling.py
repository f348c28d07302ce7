"""Spelling slips in requests are put right before they are embedded (``loradex.spelling``): which
words are touched and which never are, and through the real search and generate on a real registry."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from loradex.service import LocalService
from loradex.spelling import Speller, distance, edits1, words_of
from tests.conftest import text_zoo_service

REGISTRY = words_of(["reverse: Reverse the string.", "swapcase: Swap the case of every letter.",
                     "vowels star: Replace every vowel with an asterisk.", "keep 2: Keep every other character.",
                     "cold: cold blue palette", "cold tones"])  # fmt: skip


@pytest.fixture(scope="module")
def speller() -> Speller:
    return Speller({"reverse", "string", "the", "letter"}, REGISTRY)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("revrese the strnig", "reverse the string"),  # registry word; dictionary word
        ("swpcase every leter", "swapcase every letter"),  # only the registry knows swapcase
        ("vowels to asteriks", "vowels to asterisk"),  # the registry's word wins over the dictionary's
        ("Revrese it", "Reverse it"),  # capitalised stays capitalised
        ("keep evrey othr character", "keep every other character"),
        ("vowels to asetirsk", "vowels to asterisk"),  # two edits: a long word, to a registry word
    ],
)
def test_slips_are_put_right(speller: Speller, typed: str, meant: str) -> None:
    assert speller.correct(typed) == meant


@pytest.mark.parametrize(
    "text",
    [
        "toUpperCase then ROT13",  # inner capitals, all capitals, digits: names and code
        "invert the case",  # a dictionary word is never "corrected" to a registry word one edit away
        "rot13 it, s[::2], caesar_13",
        "abc → ABC, hello → olleh",  # example strings: short, or nothing one edit away
        "tr -s, lipogram",  # unknown but nothing near: left
        "the cat sat",  # short words
    ],
)
def test_what_is_never_touched(speller: Speller, text: str) -> None:
    assert speller.correct(text) == text


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("decapitalize the string", "decapitalize the string"),  # de + a known word: not "recapitalize"
        ("deduplicate the letters", "deduplicate the letters"),  # not "reduplicate"
        ("desaturation", "desaturation"),  # not "denaturation"
        ("unreverse it", "unreverse it"),  # un + a registry word
        ("capitalise every letter", "capitalize every letter"),  # British spelling: the known one, not "capitalist"
        ("colourise it", "colorize it"),  # two differences of spelling at once
        ("unrevrse it", "unrevrse it"),  # a slip behind a prefix: nothing one edit away is known, left
        ("tileable brick wall", "tileable brick wall"),  # a known word before a suffix: not "tillable"
    ],
)
def test_words_built_with_a_prefix_or_spelt_the_british_way_are_no_slips(typed: str, meant: str) -> None:
    words = Speller({"the", "string", "letters", "every", "letter", "it", "capitalize", "saturation", "colorize"},
                    words_of(["reverse: Reverse the string.", "dedupe: duplicate letters removed"]))  # fmt: skip
    assert words.correct(typed) == meant


def test_spelling_variants() -> None:
    from loradex.spelling import spelling_variants

    assert set(spelling_variants("colourise")) == {"colorise", "colourize", "colorize"}
    assert spelling_variants("capitalize") == ["capitalise"] and spelling_variants("greyscale") == ["grayscale"]
    assert spelling_variants("reverse") == []


def test_a_tie_the_registry_cannot_break_is_left(speller: Speller) -> None:
    tie = Speller(set(), Counter({"cold": 2, "colt": 2}))
    assert tie.fix("colx") is None
    assert Speller(set(), Counter({"cold": 3, "colt": 2})).fix("colx") == "cold"


def test_a_tie_in_the_dictionary_is_left_in_every_process() -> None:
    """pyspellchecker breaks a tie of equally frequent words by set order, which follows the hash
    seed: the fix must not change from one process to the next ("tileable": tillable or fileable)."""
    import os
    import subprocess
    import sys

    code = (
        "from loradex.spelling import Speller, _dictionary_fix;"
        "print(_dictionary_fix('tileable'), _dictionary_fix('sepai'), _dictionary_fix('gren'),"
        " Speller(set(), {}).fix('tileable'))"
    )
    seen = set()
    for seed in range(4):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        seen.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout.strip())  # fmt: skip
    assert seen == {"None sepia green None"}  # a tie left alone; a clear most frequent word taken


def test_edits_and_distance_agree() -> None:
    for word in ("reverse", "string"):
        for e in list(edits1(word))[:200]:
            assert distance(word, e) == 1
    assert distance("asetirsk", "asterisk") == 2 and distance("abc", "abcdef") == 3


TASKS = ("reverse", "swapcase", "vowels_star", "keep_2")


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[LocalService]:
    with text_zoo_service(tmp_path / "home", TASKS) as s:
        yield s


def test_search_reads_a_slip_as_the_word_meant(svc: LocalService) -> None:
    typed, meant = "revrese the strnig", "reverse the string"
    got, want = svc.search(typed, k=4), svc.search(meant, k=4)
    assert [h.adapter["id"] for h in got] == [h.adapter["id"] for h in want]
    assert [h.score for h in got] == pytest.approx([h.score for h in want])
    svc.searcher.speller = lambda: None  # type: ignore[method-assign]
    plain = svc.search(typed, k=4)
    assert [h.score for h in plain] != pytest.approx([h.score for h in want])  # the slip did cost something


def test_a_misspelt_symbol_name_is_read_as_the_name(svc: LocalService) -> None:
    hits = svc.search("put a hypen between every letter", k=3)
    assert hits.read == "put a hyphen between every letter"  # not "hype": the names search reads are words it knows
    sp = svc.searcher.speller()
    assert sp is not None and sp.fix("asterik") == "asterisk" and sp.fix("underscor") == "underscore"


def test_the_registry_words_follow_its_adapters(svc: LocalService) -> None:
    sp = svc.searcher.speller()
    assert sp is not None and "swapcase" in sp.registry_words and "interleave" not in sp.registry_words
    assert svc.searcher.speller() is sp  # nothing changed: the same speller, not rebuilt per search
    report = svc.ingest(
        [Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "text" / "adapters" / "interleave_dash"]
    )
    assert "interleave" in svc.searcher.speller().registry_words  # type: ignore[union-attr]
    svc.remove(report.results[0].adapter_id)  # type: ignore[arg-type]
    assert "interleave" not in svc.searcher.speller().registry_words  # type: ignore[union-attr]


def test_generate_reads_the_slip_and_keeps_what_was_typed(svc: LocalService) -> None:
    typed = "revrese the strnig"
    made = svc.generate(typed, family="zoo-text", method="nearest")
    assert made.adapter["description"] == typed
    assert made.lineage["experts"] == svc.generate("reverse the string", family="zoo-text",
                                                   method="nearest").lineage["experts"]  # fmt: skip
    assert [e["name"] for e in made.lineage["experts"]] == ["reverse"]


def test_every_surface_says_what_was_searched_for(svc: LocalService, capsys: pytest.CaptureFixture[str]) -> None:
    from fastapi.testclient import TestClient

    from ui.api import create_app
    from ui.cli import main

    assert svc.search("revrese the strnig", k=2).read == "reverse the string"
    assert svc.search("reverse the string", k=2).read is None  # nothing put right: nothing said
    with TestClient(create_app(svc)) as http:
        body = http.post("/search", json={"prompt": "Revrese the strnig", "k": 2}).json()
    assert body["read"] == "Reverse the string" and body["hits"]
    capsys.readouterr()
    assert main(["--home", str(svc.home), "search", "revrese the strnig", "-k", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["read"] == "reverse the string"
    assert main(["--home", str(svc.home), "search", "revrese the strnig", "-k", "2"]) == 0
    assert "searched for: reverse the string" in capsys.readouterr().out
