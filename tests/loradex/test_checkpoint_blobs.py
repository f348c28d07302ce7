"""Recorded checkpoints live in the blob store (``registry.checkpoints``): a replica with its own data
dir, on the same PostgreSQL database and the same blob storage (a shared folder, or an fsspec URL
with a cache folder per replica), loads a text map or weight encoder another replica trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from encoders.weight.registry_training import EncoderTrainingError
from loradex.service import LocalService
from registry.errors import CheckpointError
from registry.models import EncoderCheckpoint
from registry.store import Registry
from tests.conftest import _pg_schema_url
from tests.loradex.test_text_map_registry import FEW_STEPS, PROMPT, SAMPLES, _texts

STORES = ["shared-folder", "fsspec"]


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    return _pg_schema_url(request, required=True)


def _store(kind: str, tmp_path: Path) -> dict[str, Any]:
    """Where the replicas' blobs are: one folder both use, or a ``file://`` URL (each replica then
    fetches into its own cache folder under its data dir, as on two machines)."""
    if kind == "shared-folder":
        return {"blob_dir": tmp_path / "blobs"}
    return {"blobs_url": (tmp_path / "remote").as_uri()}


def _ranking(svc: LocalService, prompt: str, mode: str) -> list[tuple[str, float]]:
    return [(h.adapter["name"], round(h.score, 5)) for h in svc.search(prompt, k=20, mode=mode)]


@pytest.fixture(params=STORES)
def pair(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str):
    store = _store(request.param, tmp_path)
    a = LocalService.open(tmp_path / "a", pg_url, **store)
    b = LocalService.open(tmp_path / "b", pg_url, text_encoder=a.text_encoder, **store)
    yield a, b
    a.close()
    b.close()


def test_text_map_fitted_on_one_replica_is_loaded_by_another(pair: tuple[LocalService, LocalService]) -> None:
    a, b = pair
    a.ingest([SAMPLES])
    b.catch_up()
    plain = _ranking(b, PROMPT, "text")
    result = a.train_text_map(_texts(), FEW_STEPS)

    step = b.catch_up()  # B's embedder reloads from the recorded checkpoint: a blob, not A's folder
    assert "text" in step.rebuilt
    assert b.registry.embedders["text"].map_version == result["version"]
    assert b.registry.indexes["text"].version == a.registry.indexes["text"].version
    assert _ranking(b, PROMPT, "text") == _ranking(a, PROMPT, "text") != plain
    (rec,) = b.encoders()
    assert rec["blob"] and not Path(rec["path"]).is_relative_to(a.home)
    assert Path(rec["path"], "text_map.safetensors").is_file()
    for reg in (a.registry, b.registry):
        rep = reg.fsck()
        assert rep.orphan_blobs == [] and rep.missing_checkpoints == []  # the checkpoint's blob is referenced


def test_weight_encoder_trained_on_one_replica_is_loaded_by_another(
    pair: tuple[LocalService, LocalService], tiny_text_zoo: Path
) -> None:
    from benchmarks.zoo import training_texts
    from encoders.weight.train import TrainConfig

    a, b = pair
    a.ingest([tiny_text_zoo / "adapters"])
    b.catch_up()
    texts = training_texts(json.loads((tiny_text_zoo / "manifest.json").read_text()))
    out = a.train_encoder("zoo-text", texts=texts, only_listed=True, train_config=TrainConfig(epochs=5, val_fraction=0))

    b.catch_up()
    assert b.weight_embedder.families["zoo-text"] == out["version"]
    assert b.registry.indexes["weights"].version == a.registry.indexes["weights"].version
    weights = _ranking(b, "Reverse the string.", "weights")
    assert weights and weights == _ranking(a, "Reverse the string.", "weights")
    # the checkpoint records which adapters it learned (the training tasks'), and travels with it
    learned = {r["sha256"] for r in a.registry.list(family="zoo-text") if r["name"] in texts}
    assert 0 < len(learned) < len(a.registry.list(family="zoo-text"))
    assert b.weight_embedder.trained_on("zoo-text") == learned


def test_generator_trained_on_one_replica_is_in_the_catalog_of_another(
    pair: tuple[LocalService, LocalService],
) -> None:
    from generators import load_generator
    from tests.generators.conftest import TEXT_ZOO

    a, b = pair
    a.ingest([TEXT_ZOO / "adapters" / n for n in ("caesar_1", "reverse", "upper")])
    out = a.train_generator("zoo-text", "nearest")
    entry = b.generators()["zoo-text"]["nearest"]
    assert entry["source"] == "trained" and entry["version"] == out["version"]
    assert not Path(entry["path"]).is_relative_to(a.home)
    gen = load_generator(Path(entry["path"]), text_encoder=b.text_encoder)
    assert gen.generate("write the string backwards").lineage["experts"][0]["name"] == "reverse"


def test_old_path_row_still_loads_and_recording_again_moves_it_to_the_blob_store(
    pair: tuple[LocalService, LocalService],
) -> None:
    a, b = pair
    a.ingest([SAMPLES])
    result = a.train_text_map(_texts(), FEW_STEPS)
    folder = Path(result["path"])
    blob = a.encoders()[0]["blob"]
    # the row as recorded before checkpoints were blobs: the folder's path relative to A's data dir
    with a.registry.sessions.begin() as s:
        s.execute(update(EncoderCheckpoint).values(path=str(folder.relative_to(a.home))))
    a.registry.embedders["text"].reload()
    assert a.registry.embedders["text"].map_version == result["version"]  # read from the plain path
    assert a.encoders()[0]["path"] == str(folder) and a.encoders()[0]["blob"] is None
    with pytest.raises(EncoderTrainingError, match="not a text map folder"):
        b.catch_up()  # B has no such folder: what shared mode did before

    assert a.add_text_map(folder) == result["version"]  # the same version again: the row moves to the blob
    assert [e["blob"] for e in a.encoders()] == [blob]
    b.catch_up()
    assert b.registry.embedders["text"].map_version == result["version"]


def test_search_settings_recorded_again_reach_the_other_replica(pair: tuple[LocalService, LocalService]) -> None:
    """A text map's search settings edited and recorded again keep its version (nothing re-embeds), so
    no change-log entry tells B; B's catch-up sees the recorded checkpoint change and reloads the map."""
    a, b = pair
    a.ingest([SAMPLES])
    result = a.train_text_map(_texts(), FEW_STEPS)
    b.catch_up()
    folder = Path(result["path"])
    cfg = json.loads((folder / "config.json").read_text())
    assert b.searcher.signal_weights == cfg["search"]["signal_weights"]
    assert b.catch_up().reloaded == []
    edited = {"weights": 0.9, "text": 0.1}
    (folder / "config.json").write_text(json.dumps({**cfg, "search": {**cfg["search"], "signal_weights": edited}}))
    assert a.add_text_map(folder) == result["version"]
    step = b.catch_up()
    assert step.reloaded == ["text"] and "text" not in step.rebuilt  # the same version: the index stays
    assert b.searcher.signal_weights == edited == a.searcher.signal_weights
    assert _ranking(b, PROMPT, "hybrid") == _ranking(a, PROMPT, "hybrid")
    assert b.catch_up().reloaded == []


@pytest.mark.parametrize("store", STORES)
def test_a_failed_record_leaves_no_blob_and_a_bad_folder_is_named(tmp_path: Path, pg_url: str, store: str) -> None:
    reg = Registry(tmp_path / "a", pg_url, **_store(store, tmp_path))
    reg.init()
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"kind": "test"}')
    (ckpt / "model.safetensors").write_bytes(b"\0" * 64)

    with pytest.raises(DBAPIError):  # kind longer than its column: PostgreSQL refuses the row
        reg.record_encoder("k" * 40, "fam", "v1", ckpt, {})
    assert reg.blobs.listing() == [] and reg.encoders() == []

    (ckpt / "sub").mkdir()
    with pytest.raises(CheckpointError, match=rf"{ckpt}: .*files only.*sub"):
        reg.record_encoder("weights", "fam", "v1", ckpt, {})
    (ckpt / "sub").rmdir()
    with pytest.raises(CheckpointError, match=rf"{tmp_path / 'nope'}: .*no such folder"):
        reg.record_encoder("weights", "fam", "v1", tmp_path / "nope", {})
    assert reg.blobs.listing() == [] and reg.encoders() == []

    reg.record_encoder("weights", "fam", "v1", ckpt, {})
    reg.record_encoder("weights", "fam", "v1", ckpt, {"again": 1})  # idempotent on the version
    (rec,) = reg.encoders()
    assert reg.blobs.listing() == [rec["blob"]]
    assert sorted(p.name for p in Path(rec["path"]).iterdir()) == ["config.json", "model.safetensors"]
    # removing an adapter's blob never takes a checkpoint's, and fsck --repair keeps it
    with reg.blobs.lock(rec["blob"]):
        reg._remove_unreferenced_blob(rec["blob"])
    assert reg.fsck(repair=True).orphan_blobs == [] and reg.blobs.exists(rec["blob"])
    # the same version recorded with edited files: the row points at them, the earlier blob is gone
    (ckpt / "config.json").write_text('{"edited": true}')
    reg.record_encoder("weights", "fam", "v1", ckpt, {"edited": 1})
    (rec2,) = reg.encoders()
    assert rec2["blob"] != rec["blob"] and reg.blobs.listing() == [rec2["blob"]] and rec2["metrics"] == {"edited": 1}
    assert (Path(rec2["path"]) / "config.json").read_text() == '{"edited": true}'
    reg.close()
