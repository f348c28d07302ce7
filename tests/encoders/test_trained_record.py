"""A weight-encoder checkpoint records which adapters it was trained on (``encoders.weight.trained``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from encoders.weight import BUNDLED
from encoders.weight.trained import TRAINED_ADAPTERS, load_trained_adapters, write_trained_adapters
from loradex.service import LocalService

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "benchmarks" / "zoo" / "text"


def test_record_round_trip_and_refusals(tmp_path: Path) -> None:
    assert load_trained_adapters(tmp_path) is None  # a checkpoint written before records does not say
    write_trained_adapters(tmp_path, ["b", "a", "b"])
    assert json.loads((tmp_path / TRAINED_ADAPTERS).read_text()) == {"sha256": ["a", "b"]}
    assert load_trained_adapters(tmp_path) == frozenset({"a", "b"})
    with pytest.raises(ValueError, match="no trained adapters"):
        write_trained_adapters(tmp_path / "x", [])
    (tmp_path / TRAINED_ADAPTERS).write_text('{"sha256": "a"}')
    with pytest.raises(ValueError, match=r"trained_adapters\.json.*list of strings"):
        load_trained_adapters(tmp_path)
    (tmp_path / TRAINED_ADAPTERS).write_text("{")
    with pytest.raises(ValueError, match=r"trained_adapters\.json: not a trained-adapters file"):
        load_trained_adapters(tmp_path)


def test_the_bundled_zoo_encoder_knows_its_training_tasks_adapters_only(tmp_path: Path) -> None:
    manifest = json.loads((ZOO / "manifest.json").read_text())
    split = {t["id"]: t["split"] for t in manifest["tasks"]}
    if split.get("reverse") != "train" or split.get("caesar_3") != "heldout":
        pytest.skip("the committed text zoo changed")
    metrics = json.loads((BUNDLED / "zoo-text" / "metrics.json").read_text())
    assert len(load_trained_adapters(BUNDLED / "zoo-text") or ()) == metrics["adapters"]
    svc = LocalService.open(tmp_path / "home")
    try:
        svc.ingest([ZOO / "adapters" / "reverse", ZOO / "adapters" / "caesar_3"])
        sha = {r["name"]: r["sha256"] for r in svc.list(family="zoo-text")}
        learned = svc.weight_embedder.trained_on("zoo-text")
        assert learned is not None and sha["reverse"] in learned and sha["caesar_3"] not in learned
        assert svc.weight_embedder.trained_on("no-such-family") is None
    finally:
        svc.close()
