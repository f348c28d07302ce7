"""``compose --auto K`` picks adapters that together cover the request (``diverse_picks``), not the
K nearest ones, which are often seeds of one adapter or the same attribute twice. The registry is
set up as a fresh start makes it: with its text map fitted on the zoo set's paraphrases."""

from __future__ import annotations

from pathlib import Path

import pytest

from loradex.composition import pick_adapters
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
