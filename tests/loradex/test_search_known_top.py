"""Hybrid search lets text lead when the text signal's best adapter is one its family's weight
encoder was not trained on (``Searcher.fusion_weights``; the map's ``untrained_top_weights``).

The text zoo's bundled encoder records the adapters of its training tasks
(``encoders.weight.trained``): ``caesar_3`` is a held-out task, the others are training tasks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.zoo import training_texts
from encoders.registry_text_map import MAPPED_SEARCH, REGISTRY_MAP_CONFIG
from encoders.weight import BUNDLED as WEIGHT_BUNDLED
from encoders.weight.registry_training import EncoderTrainingError
from encoders.weight.trained import TRAINED_ADAPTERS
from loradex.search import SIGNAL_WEIGHTS, fuse
from loradex.service import LocalService
from loradex.types import SearchHit

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "benchmarks" / "zoo" / "text"
TRAINED = ("reverse", "upper", "caesar_1", "caesar_2", "caesar_4", "append_ing", "swapcase")
UNTRAINED = "caesar_3"
FEW_STEPS = replace(REGISTRY_MAP_CONFIG, steps=60)
TO_UNTRAINED = "Shift each letter forward by 3 in the alphabet, wrapping around from z to a."  # its description
TO_TRAINED = "write the word backwards"
BUNDLED = json.loads(MAPPED_SEARCH.read_text())
FIXED, LED = BUNDLED["signal_weights"], BUNDLED["untrained_top_weights"]


@pytest.fixture
def svc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalService]:
    # the fusion alone is compared here: the description-precision re-rank that follows it
    # (``rerank_by_precision``, tests/loradex/test_precision_rerank.py) and the settings prior
    # (``loradex.params``, tests/loradex/test_params.py) are left out
    monkeypatch.setattr("loradex.search.rerank_by_precision", lambda ranked, precision, weight: ranked)
    monkeypatch.setattr("loradex.search.SETTING_PENALTY", 0.0)  # and the settings prior (caesar_1 … vs "by 3")
    manifest = json.loads((ZOO / "manifest.json").read_text())
    split = {t["id"]: t["split"] for t in manifest["tasks"]}
    if split.get(UNTRAINED) != "heldout" or any(split.get(t) != "train" for t in TRAINED):
        pytest.skip("the committed text zoo changed")
    s = LocalService.open(tmp_path / "home")
    assert s.ingest([ZOO / "adapters" / t for t in (*TRAINED, UNTRAINED)]).count("ingested") == len(TRAINED) + 1
    yield s
    s.close()


def _fit(svc: LocalService) -> Path:
    texts = training_texts(json.loads((ZOO / "manifest.json").read_text()))
    return Path(svc.train_text_map({t: texts[t] for t in TRAINED}, FEW_STEPS)["path"])


def _hits(svc: LocalService, prompt: str) -> tuple[list[SearchHit], dict[str, dict[int, float]]]:
    """Every adapter's hybrid hit for ``prompt`` and its cosines per signal (the whole registry is
    under ``REFERENCE_POOL``: the reference is every adapter)."""
    hits = svc.search(prompt, len(TRAINED) + 1, mode="hybrid")
    assert len(hits) == len(TRAINED) + 1 and all(h.scores["weights"] is not None for h in hits)
    return hits, {kind: {h.adapter["id"]: float(h.scores[kind] or 0.0) for h in hits} for kind in ("weights", "text")}


def _fused_with(hits: list[SearchHit], signals: dict[str, dict[int, float]], weights: dict[str, float]) -> bool:
    fused = fuse(signals, weights)
    return all(abs(h.score - fused[h.adapter["id"]]) < 1e-9 for h in hits)


def _best(scores: dict[int, float]) -> int:
    return min(scores, key=lambda i: (-scores[i], i))


def test_text_leads_when_its_best_adapter_is_untrained_and_not_otherwise(svc: LocalService) -> None:
    assert LED["text"] > FIXED["text"]  # the bundled map settings carry a text-led fusion
    _fit(svc)
    names = {r["id"]: r["name"] for r in svc.list()}
    hits, signals = _hits(svc, TO_UNTRAINED)
    text_top, weights_top = _best(signals["text"]), _best(signals["weights"])
    assert names[text_top] == UNTRAINED and names[weights_top] != UNTRAINED  # the case the gate is for
    assert _fused_with(hits, signals, LED) and not _fused_with(hits, signals, FIXED)
    led, fixed = fuse(signals, LED), fuse(signals, FIXED)
    # text's best gains on the weights' best: text leads
    assert led[text_top] - led[weights_top] > fixed[text_top] - fixed[weights_top]
    hits, signals = _hits(svc, TO_TRAINED)
    assert names[_best(signals["text"])] == "reverse"  # a trained adapter: the fixed fusion
    assert _fused_with(hits, signals, FIXED) and not _fused_with(hits, signals, LED)


def test_a_map_config_without_the_key_and_a_registry_without_a_map_keep_the_fixed_fusion(svc: LocalService) -> None:
    hits, signals = _hits(svc, TO_UNTRAINED)  # no map: plain cosines, the plain weights
    assert _fused_with(hits, signals, SIGNAL_WEIGHTS)
    folder = _fit(svc)
    cfg_file = folder / "config.json"
    cfg = json.loads(cfg_file.read_text())
    old = {k: v for k, v in cfg["search"].items() if k != "untrained_top_weights"}  # written before the key
    cfg_file.write_text(json.dumps({**cfg, "search": old}))
    svc.add_text_map(folder)
    hits, signals = _hits(svc, TO_UNTRAINED)
    names = {r["id"]: r["name"] for r in svc.list()}
    assert names[_best(signals["text"])] == UNTRAINED
    assert _fused_with(hits, signals, FIXED) and not _fused_with(hits, signals, LED)


def test_a_family_whose_encoder_does_not_record_its_adapters_keeps_the_fixed_fusion(
    svc: LocalService, tmp_path: Path
) -> None:
    _fit(svc)
    old = tmp_path / "zoo-text-before-records"  # the same encoder, as written before the record existed
    shutil.copytree(WEIGHT_BUNDLED / "zoo-text", old, ignore=shutil.ignore_patterns(TRAINED_ADAPTERS))
    version = svc.weight_embedder.version
    svc.weight_embedder.set_sources(lambda: [old])
    assert svc.weight_embedder.trained_on("zoo-text") is None and svc.weight_embedder.version == version
    hits, signals = _hits(svc, TO_UNTRAINED)
    assert _fused_with(hits, signals, FIXED)


def test_malformed_text_led_weights_are_refused_naming_the_file(svc: LocalService) -> None:
    folder = _fit(svc)
    cfg_file = folder / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg_file.write_text(json.dumps({**cfg, "search": {**cfg["search"], "untrained_top_weights": {"text": 0.9}}}))
    before = svc.encoders()
    with pytest.raises(EncoderTrainingError, match=r"config\.json.*untrained_top_weights"):
        svc.add_text_map(folder)
    assert svc.encoders() == before


def test_a_family_s_own_weights_apply_when_text_s_best_is_known_and_of_that_family(svc: LocalService) -> None:
    """``family_signal_weights``: the weights of the family of text's best adapter (when that adapter
    is known to its encoder); text still leads when it is not; another family's entry changes nothing."""
    folder = _fit(svc)
    cfg_file = folder / "config.json"
    cfg = json.loads(cfg_file.read_text())
    own = {"weights": 0.8, "text": 0.2}
    for families, expected in (({"zoo-image": own}, FIXED), ({"zoo-text": own, "zoo-image": LED}, own)):
        cfg_file.write_text(json.dumps({**cfg, "search": {**cfg["search"], "family_signal_weights": families}}))
        svc.add_text_map(folder)
        hits, signals = _hits(svc, TO_TRAINED)
        others = [w for w in (FIXED, own) if w != expected]
        assert _fused_with(hits, signals, expected) and not any(_fused_with(hits, signals, w) for w in others)
        hits, signals = _hits(svc, TO_UNTRAINED)  # an untrained best: text-led whatever the family's weights
        assert _fused_with(hits, signals, LED)


def test_malformed_family_weights_are_refused_naming_the_file(svc: LocalService) -> None:
    folder = _fit(svc)
    cfg_file = folder / "config.json"
    cfg = json.loads(cfg_file.read_text())
    bad = {"zoo-text": {"weights": 0.5, "text": -1}}
    cfg_file.write_text(json.dumps({**cfg, "search": {**cfg["search"], "family_signal_weights": bad}}))
    before = svc.encoders()
    with pytest.raises(EncoderTrainingError, match=r"config\.json.*family_signal_weights\['zoo-text'\]"):
        svc.add_text_map(folder)
    assert svc.encoders() == before
