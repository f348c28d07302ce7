"""Which way a request goes on a rotation, a sort order, a letter case or the way lines run
(``loradex.directions``), and the search prior
that lowers adapters described the other way (``Searcher._ranked``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from loradex.directions import directions, opposed
from loradex.search import DIRECTION_PENALTY, lowered
from loradex.service import LocalService
from tests.conftest import names_without_prior, text_zoo_service

TEXT_ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "text"


@pytest.mark.parametrize(
    ("text", "way"),
    [
        ("bring the final three letters round to the start", {"rotation": "right"}),
        ("the opening character should hop over to the back", {"rotation": "left"}),
        ("circular shift to the left by one", {"rotation": "left"}),
        ("cyclically rotate rightwards 4", {"rotation": "right"}),
        ("ROR 2", {"rotation": "right"}),
        ("left-rotate by three", {"rotation": "left"}),
        ("put the letters in order from z down to a", {"order": "down"}),
        ("alphabetize it", {"order": "up"}),
        ("reverse-alphabetical ordering of the characters", {"order": "down"}),
        ("sort them A-Z", {"order": "up"}),
        ("sort descending", {"order": "down"}),
        ("arrange characters with the smallest first", {"order": "up"}),
        ("rotate left by 1, then sort in descending order", {"rotation": "left", "order": "down"}),
        ("Make all the big letters into little letters.", {"case": "lower"}),
        ("get rid of all the capital letters", {"case": "lower"}),
        ("downcase string", {"case": "lower"}),
        ("then the result make in big letters", {"case": "upper"}),
        ("make it look like I'm shouting", {"case": "upper"}),
        ("turn it all into capital letters", {"case": "upper"}),
        ("thin lines going side to side over my pic", {"lines": "horizontal"}),
        ("Fine stripes stacked from top to bottom", {"lines": "horizontal"}),  # rows, one above another
        ("old brown photo with up-and-down lines", {"lines": "vertical"}),
        ("bars like a barcode", {"lines": "vertical"}),
        ("dark colours with slanty stripes", {"lines": "diagonal"}),
        ("candy-cane bands at 45°", {"lines": "diagonal"}),
    ],
)
def test_the_way_is_read(text: str, way: dict[str, str]) -> None:
    assert directions(text) == way


@pytest.mark.parametrize(
    "text",
    [
        "Shift each letter forward by 1 in the alphabet, wrapping around from z to a.",  # no ordering
        "shift every letter to the one right after it",  # "right" without a rotation
        "rotate left, then rotate right",  # both ways: says nothing
        "add 'ing' to the end",
        "sort the characters",  # no way named
        "the right style for old photos, left as it is",
        "capitals become small and small become capitals",  # both ways: swapping case
        "Swap upper and lower case",
        "keep upper and lower case as they are",
        "Cover everything in small round spots arranged in a grid.",  # not about letters
        "The whole frame becomes a soft brown monochrome with a yellowish cast.",
        "a grid of horizontal and vertical lines",  # two ways: says nothing
        "a horizontal banner, no pattern",  # not about lines
    ],
)
def test_no_way_is_read(text: str) -> None:
    assert directions(text) == {}


def test_no_zoo_text_is_read_the_wrong_way() -> None:
    """Every description and paraphrase of both zoos: a way read is the task's own (rotl/rotr, sort/sortdesc,
    upper/lower steps), and most of the text zoo's rotation, sort and case texts are read."""
    read = total = 0
    for kind in ("text", "image"):
        manifest = json.loads((TEXT_ZOO.parent / kind / "manifest.json").read_text())
        for task in manifest["tasks"]:
            want: dict[str, str] = {}
            for step in task["id"].split("__then__"):
                if step.startswith(("rotl_", "rotr_")):
                    want["rotation"] = "left" if step.startswith("rotl_") else "right"
                if step in ("sort", "sortdesc"):
                    want["order"] = "up" if step == "sort" else "down"
                if step in ("upper", "lower"):
                    want["case"] = step
            for part, way in (("hstripes", "horizontal"), ("vstripes", "vertical"), ("diagonal", "diagonal")):
                if task["id"].endswith(part):
                    want["lines"] = way
            for text in [task["canonical"], *(p["text"] for p in task["paraphrases"])]:
                got = directions(text)
                if task["id"].endswith("waves"):  # wavy lines may run any way: the adapter names none
                    got.pop("lines", None)
                assert all(want.get(axis) == way for axis, way in got.items()), (task["id"], text, got)
                total += bool(want)
                read += bool(want) and got == want
    assert total > 350 and read / total > 0.9


def test_opposed_counts_axes_both_name_the_other_way() -> None:
    assert opposed({"rotation": "left"}, {"rotation": "right"}) == 1
    assert opposed({"rotation": "left", "order": "up"}, {"rotation": "right", "order": "down"}) == 2
    assert opposed({"rotation": "left"}, {"order": "down"}) == 0 and opposed({}, {"rotation": "right"}) == 0
    ranked = [(2.0, 1, None), (1.5, 2, None), (1.0, 3, None)]
    assert [i for _, i, _ in lowered(ranked, {1: DIRECTION_PENALTY})] == [2, 1, 3]
    assert lowered(ranked, {1: 0.0}) is ranked


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    # No text map: a map fitted on seven adapters' texts is not reproducible (inputs that differ by 1e-6,
    # as encoding the same texts in other batches gives, fit maps that rank these prompts differently);
    # the prior's effect is checked on the plain signals, which are.
    tasks = ("rotl_2", "rotr_2", "rotl_1", "rotr_1", "sort", "sortdesc", "reverse")
    with text_zoo_service(tmp_path_factory.mktemp("directions") / "home", tasks) as s:
        yield s


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("move the first two characters to the end", "rotl_2"),
        ("cycle the text one place to the left", "rotl_1"),
        ("cyclic shift to the right by 1", "rotr_1"),
        ("sort the letters from z to a", "sortdesc"),
        ("sort the letters from a to z", "sort"),
    ],
)
def test_search_puts_the_way_asked_first(svc: LocalService, prompt: str, task: str) -> None:
    hits = svc.search(prompt, k=7)
    assert hits[0].adapter["name"] == task
    way = directions(prompt)
    assert all(opposed(way, directions(h.adapter["description"])) == 0 for h in hits[:1])


@pytest.mark.parametrize(("prompt", "task"), [("cycle the text one place to the left", "rotl_1"),
                                             ("sort the letters from a to z", "sort")])  # fmt: skip
def test_without_the_prior_a_way_is_lost(svc: LocalService, monkeypatch: pytest.MonkeyPatch, prompt: str,
                                         task: str) -> None:  # fmt: skip
    import loradex.search

    monkeypatch.setattr(loradex.search, "DIRECTION_BONUS", 0.0)  # the penalty alone
    without, shipped = names_without_prior(svc, prompt, 3, monkeypatch, "DIRECTION_PENALTY")
    assert shipped[0] == task and without[0] != task


def test_agreed_needs_one_axis_the_same_way_and_none_opposed() -> None:
    from loradex.directions import agreed

    assert agreed({"rotation": "right"}, {"rotation": "right"})
    assert not agreed({"rotation": "right"}, {"rotation": "left"}) and not agreed({"rotation": "right"}, {})
    assert not agreed({"rotation": "right", "order": "up"}, {"rotation": "right", "order": "down"})
    assert agreed({"lines": "vertical", "case": "upper"}, {"lines": "vertical"})


@pytest.mark.parametrize(("prompt", "task"), [("move the final letter to the very front", "rotr_1"),
                                             ("take the last two letters and put them at the start", "rotr_2")])  # fmt: skip
def test_an_adapter_going_the_way_asked_is_raised(svc: LocalService, monkeypatch: pytest.MonkeyPatch, prompt: str,
                                                  task: str) -> None:  # fmt: skip
    """Only lowering the other way leaves the reversal and the sorts (no way named) above the rotation asked."""
    without, shipped = names_without_prior(svc, prompt, 3, monkeypatch, "DIRECTION_BONUS")
    assert shipped[0] == task and without[0] != task, (without, shipped)


def test_abc_order_is_read_as_alphabetical() -> None:
    from loradex.directions import plain_orders
    from loradex.search import readable_for

    assert plain_orders("Put the letters in ABC order.") == "Put the letters in alphabetical order."
    assert plain_orders("add abc to the end") == "add abc to the end"  # the letters themselves, kept
    assert readable_for(None, "sort it in abc-order") == "sort it in alphabetical order"
    assert directions(plain_orders("abc order please")) == {"order": "up"}
