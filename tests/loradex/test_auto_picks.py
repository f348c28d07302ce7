"""``compose --auto K`` picks adapters that together cover the request (``part_picks``: one for each
part of it, the rest by ``diverse_picks``), not the K nearest ones, which are often seeds of one
adapter, the same attribute twice, or adapters that bring a thing nobody asked for. The registry
is set up as a fresh start makes it: with its text map fitted on the zoo set's paraphrases."""

from __future__ import annotations

from pathlib import Path

import pytest

from loradex.composition import diverse_picks, pick_adapters, request_parts, sequence_parts
from loradex.service import LocalService
from loradex.settings import Settings

IMAGE = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "image" / "adapters"
FOLDERS = ("crescent", "crescent_s1", "thermal", "thermal_s1", "sepia", "dots", "heart", "hstripes", "hstripes_s1",
           "neon", "grayscale_dots", "sepia_diagonal")  # fmt: skip


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> LocalService:
    if not (IMAGE / "crescent").is_dir():
        pytest.skip("the image zoo is not built")
    s = LocalService.open(tmp_path_factory.mktemp("picks") / "home")
    assert s.ingest([IMAGE / f for f in FOLDERS]).count("ingested") == len(FOLDERS)
    s.train_text_map(Settings(adapter_sets=("zoo-image",)).bundled_texts())
    yield s
    s.close()


def _task(name: str) -> str:
    return name.removesuffix("_s1")


@pytest.mark.parametrize(("prompt", "wanted"), [
    ("a crescent moon in thermal camera colours", {"crescent", "thermal"}),  # nearest 2: crescent, crescent_s1
    ("a neon crescent", {"crescent", "neon"}),  # nearest 2: crescent, crescent_s1
    ("horizontal stripes in heat-camera colours", {"hstripes", "thermal"}),  # nearest 2: thermal, thermal_s1
])  # fmt: skip
def test_auto_picks_cover_the_request(svc: LocalService, prompt: str, wanted: set[str]) -> None:
    rows = pick_adapters(svc, prompt, None, len(wanted), "zoo-image")
    tasks = [_task(r["name"]) for r in rows]
    assert len(set(tasks)) == len(tasks), tasks  # never two seeds of one adapter
    assert set(tasks) == wanted, tasks


def test_auto_pick_of_one_is_the_best_hit(svc: LocalService) -> None:
    prompt = "a crescent moon in thermal camera colours"
    best = svc.search(prompt, k=1, family="zoo-image")[0].adapter["id"]
    assert [r["id"] for r in pick_adapters(svc, prompt, None, 1, "zoo-image")] == [best]


@pytest.mark.parametrize(("prompt", "parts"), [
    ("a star, in sepia, with polka dots", ["a star", "sepia", "polka dots"]),
    ("Black-and-white look plus candy-cane bands over everything",
     ["Black-and-white look", "candy-cane bands", "everything"]),
    ("a soft watercolor painting", ["a soft watercolor painting"]),
    ("reverse the string; then 2", ["reverse the string"]),
    ("", []),
])  # fmt: skip
def test_request_parts(prompt: str, parts: list[str]) -> None:
    assert request_parts(prompt) == parts


def test_a_request_of_steps_divides_into_its_steps() -> None:
    prompt = "Sort the characters in descending order, then append 'ing'."
    assert sequence_parts(prompt) == ["Sort the characters in descending order", "append 'ing'"]
    assert "descending order" in request_parts(prompt)  # cut at "in": half a step searched alone
    assert sequence_parts("a star, in sepia, with polka dots") == []  # not a request of steps


@pytest.mark.parametrize(("prompt", "wanted"), [
    ("polka dots on top of a sepia tint", {"sepia", "dots"}),
    ("a heart, in old-photograph browns, with polka dots", {"heart", "sepia", "dots"}),
])  # fmt: skip
def test_auto_picks_bring_only_what_was_asked(svc: LocalService, prompt: str, wanted: set[str]) -> None:
    """Adapters that each do one asked-for thing, not a combination that brings an unasked one
    (grayscale_dots for "dots", sepia_diagonal for "sepia")."""
    rows = pick_adapters(svc, prompt, None, len(wanted), "zoo-image")
    assert {_task(r["name"]) for r in rows} == wanted, [r["name"] for r in rows]


def test_whole_request_picks_bring_a_combination(svc: LocalService) -> None:
    """Why the parts are searched alone: over the whole request's hits the picker before took an
    adapter that does two things (the check that the cases above test something)."""
    prompt = "polka dots on top of a sepia tint"
    hits = svc.search(prompt, k=20, family="zoo-image")
    names = {_task(h.adapter["name"]) for h in diverse_picks(svc, hits, 2)}
    assert names & {"grayscale_dots", "sepia_diagonal"}, names
