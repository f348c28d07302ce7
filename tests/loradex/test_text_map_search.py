"""A registry text map carries how search uses mapped cosines (``encoders.registry_text_map``):
hybrid fusion weights and the relevance calibration / "nothing fits" thresholds. A registry without
a map keeps the plain-cosine ones (``SIGNAL_WEIGHTS``, ``encoders/text_calibration.json``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from encoders.registry_text_map import MAPPED_SEARCH, REGISTRY_MAP_CONFIG
from encoders.weight import BUNDLED
from encoders.weight.registry_training import EncoderTrainingError
from generators.steps import split_steps
from loradex.relevance import TEXT_CALIBRATION
from loradex.search import RERANK_POOL, SIGNAL_WEIGHTS, fuse, rerank_by_precision, rerank_by_steps
from loradex.service import LocalService
from tests.conftest import fit_zoo_text_map, text_zoo_service

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "benchmarks" / "zoo" / "text"
TASKS = ("reverse", "upper", "lower", "caesar_1", "caesar_2", "append_ing", "swapcase", "repeat_2")
FEW_STEPS = replace(REGISTRY_MAP_CONFIG, steps=60)
PROMPT = "write the word backwards"


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[LocalService]:
    with text_zoo_service(tmp_path / "home", TASKS) as s:
        yield s


def _hybrid_matches(svc: LocalService, weights: dict[str, float], precision_weight: float = 0.0) -> bool:
    """Whether every adapter's hybrid score is ``fuse`` of its cosines with ``weights`` (the whole
    registry is under ``REFERENCE_POOL``: the reference is every adapter), then re-ranked by
    description precision with ``precision_weight``."""
    hits = svc.search(PROMPT, len(TASKS), mode="hybrid")
    assert len(hits) == len(TASKS) and all(h.scores["weights"] is not None for h in hits)
    signals = {kind: {h.adapter["id"]: float(h.scores[kind] or 0.0) for h in hits} for kind in ("weights", "text")}
    fused = fuse(signals, weights)
    ranked = sorted(((v, i, None) for i, v in fused.items()), key=lambda t: (-t[0], t[1]))
    pool = svc.registry.hits([i for _, i, _ in ranked[:RERANK_POOL]])
    if precision_weight:
        ranked = rerank_by_precision(
            ranked, svc.searcher._precision(PROMPT, ranked[:RERANK_POOL], pool), precision_weight
        )
    steps = {i: len(split_steps(info["description"])) for i, info in pool.items() if info.get("description")}
    ranked = rerank_by_steps(ranked, steps, len(split_steps(PROMPT)))
    expected = {i: v for v, i, _ in ranked}
    return all(abs(h.score - expected[h.adapter["id"]]) < 1e-9 for h in hits)


def test_a_registry_without_a_map_keeps_the_plain_fusion_and_calibration(svc: LocalService) -> None:
    plain = json.loads(TEXT_CALIBRATION.read_text())
    assert svc.searcher.text_settings() is None
    assert svc.searcher.signal_weights == SIGNAL_WEIGHTS
    cal = svc.searcher.calibration
    assert cal.text == plain["text"] and cal.nothing_fits_text_below == plain["nothing_fits_text_below"]
    assert cal.nothing_fits_below == plain["nothing_fits_below"]
    assert cal.families["zoo-text"] == json.loads((BUNDLED / "zoo-text" / "calibration.json").read_text())
    assert _hybrid_matches(svc, SIGNAL_WEIGHTS)


def test_a_map_carries_its_fusion_and_calibration_and_search_uses_them(svc: LocalService) -> None:
    folder = Path(fit_zoo_text_map(svc, TASKS, FEW_STEPS)["path"])
    bundled = json.loads(MAPPED_SEARCH.read_text())
    assert json.loads((folder / "config.json").read_text())["search"] == bundled
    mapped_weights = bundled["signal_weights"]
    assert mapped_weights != SIGNAL_WEIGHTS
    assert svc.searcher.signal_weights == mapped_weights
    lift = bundled["precision_weight"]
    assert lift > 0 and _hybrid_matches(svc, mapped_weights, lift)
    assert not _hybrid_matches(svc, SIGNAL_WEIGHTS, lift) and not _hybrid_matches(svc, mapped_weights)
    cal, mapped = svc.searcher.calibration, bundled["calibration"]
    assert cal.text == mapped["text"] and cal.nothing_fits_text_below == mapped["nothing_fits_text_below"]
    assert cal.nothing_fits_below == mapped["nothing_fits_below"]
    both = mapped["families"].get("zoo-text", {}).get("both")
    assert cal.families["zoo-text"].get("both") == both  # the plain-cosine joint fit is not used
    hit = svc.search(PROMPT, 1)[0]
    rel = cal.relevance("zoo-text", hit.scores)
    assert rel is not None and hit.relevance == round(rel, 4)


def test_a_registry_may_change_its_maps_settings(svc: LocalService) -> None:
    """The settings are the map folder's (per registry): editing them and recording the map again
    changes that registry's ranking and verdict; a map written without them gets the bundled ones."""
    folder = Path(fit_zoo_text_map(svc, TASKS, FEW_STEPS)["path"])
    cfg_file = folder / "config.json"
    cfg = json.loads(cfg_file.read_text())
    version = svc.encoders()[-1]["version"]
    assert svc.search(PROMPT, 5).nothing_fits is False
    strict = {"signal_weights": {"weights": 0.9, "text": 0.1},
              "calibration": {**cfg["search"]["calibration"], "nothing_fits_below": 1.0, "nothing_fits_text_below": 2.0}}  # fmt: skip
    cfg_file.write_text(json.dumps({**cfg, "search": strict}))
    assert svc.add_text_map(folder) == version  # the same map (same version: nothing re-embedded)
    assert svc.searcher.signal_weights == strict["signal_weights"]
    assert _hybrid_matches(svc, strict["signal_weights"])
    assert svc.search(PROMPT, 5).nothing_fits is True  # no hit can reach relevance 1.0, no cosine 2.0
    cfg_file.write_text(json.dumps({k: v for k, v in cfg.items() if k != "search"}))
    svc.add_text_map(folder)
    assert svc.searcher.text_settings() == json.loads(MAPPED_SEARCH.read_text())
    assert svc.search(PROMPT, 5).nothing_fits is False


def test_malformed_settings_are_refused_naming_the_file(svc: LocalService) -> None:
    folder = Path(fit_zoo_text_map(svc, TASKS, FEW_STEPS)["path"])
    cfg_file = folder / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg_file.write_text(json.dumps({**cfg, "search": {**cfg["search"], "signal_weights": {"weights": 0.0}}}))
    before = svc.encoders()
    with pytest.raises(EncoderTrainingError, match=r"config\.json.*signal_weights"):
        svc.add_text_map(folder)  # refused before anything is recorded
    cfg_file.write_text(json.dumps({**cfg, "search": {**cfg["search"], "precision_weight": -1}}))
    with pytest.raises(EncoderTrainingError, match=r"config\.json.*precision_weight must be a number >= 0"):
        svc.add_text_map(folder)
    cfg_file.write_text(json.dumps({**cfg, "search": {**cfg["search"], "kind_prior": {"kinds": ["llm"]}}}))
    with pytest.raises(EncoderTrainingError, match=r"config\.json.*kind_prior kinds must name two kinds"):
        svc.add_text_map(folder)
    assert svc.encoders() == before and svc.searcher.signal_weights == cfg["search"]["signal_weights"]
    assert len(svc.search(PROMPT, 3)) == 3
