"""Shared mode: two replicas (LocalService instances) on one database follow each other's ingests
and removals through the change log (``registry.changes``, ``registry.replica``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loradex.service import LocalService

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"


def _replica(tmp_path: Path, name: str, url: str, **kw: object) -> LocalService:
    # each replica has its own data dir (its own FAISS files); the blobs are shared
    return LocalService.open(tmp_path / name, url, blob_dir=tmp_path / "blobs", **kw)  # type: ignore[arg-type]


def _names(svc: LocalService, prompt: str) -> list[str]:
    return [h.adapter["name"] for h in svc.search(prompt, k=10)]


@pytest.fixture
def pair(tmp_path: Path, shared_db_url: str):
    a = _replica(tmp_path, "a", shared_db_url)
    b = _replica(tmp_path, "b", shared_db_url, text_encoder=a.text_encoder)
    yield a, b
    a.close()
    b.close()


def test_ingest_on_a_is_found_on_b_and_removal_follows(pair: tuple[LocalService, LocalService], tmp_path: Path) -> None:
    a, b = pair
    a.ingest([SAMPLES / "watercolor_sd15.safetensors", SAMPLES / "shakespeare_gpt2"])
    assert "watercolor_sd15" in _names(a, "a soft watercolor painting")
    assert b.search("a soft watercolor painting", k=10) == []  # B has not caught up yet

    step = b.catch_up()
    assert step.applied >= 2 and step.rebuilt == []  # applied from the log, no rebuild
    assert _names(b, "a soft watercolor painting")[0] == "watercolor_sd15"
    found = {h.adapter["name"]: h.adapter["id"] for h in b.search("talk like Shakespeare", k=10)}
    assert "Shakespeare GPT-2" in found
    assert b.export(found["Shakespeare GPT-2"], "peft", tmp_path / "out")  # blob shared by both replicas

    a.remove(found["Shakespeare GPT-2"])
    b.catch_up()
    assert "Shakespeare GPT-2" not in _names(b, "talk like Shakespeare")
    for kind, index in b.registry.indexes.items():
        assert index.ids == a.registry.indexes[kind].ids, kind
    assert b.catch_up().applied == 0  # nothing new: nothing applied


def test_pruned_or_far_behind_log_rebuilds(pair: tuple[LocalService, LocalService]) -> None:
    a, b = pair
    a.ingest([SAMPLES / "watercolor_sd15.safetensors"])
    b.catch_up()
    a.ingest([SAMPLES / "ink_sketch_sd2", SAMPLES / "neon_glow_flux.safetensors"])
    ink = next(r for r in a.list() if r["name"] == "ink_sketch_sd2")
    a.remove(ink["id"])
    assert a.registry.prune_changes(keep=0) >= 3  # B never read these entries

    step = b.catch_up()
    assert "pruned" in (step.reason or "") and sorted(step.rebuilt) == sorted(b.registry.indexes)
    assert "neon_glow_flux" in _names(b, "glowing neon lights at night")
    assert "ink_sketch_sd2" not in _names(b, "black pen drawing with hatching")
    assert b.catch_up().applied == 0

    a.ingest([SAMPLES / "pixel_art_sdxl.safetensors"])
    step = b.registry.catch_up(max_behind=0)  # further behind than allowed: rebuild, not replay
    assert "behind" in (step.reason or "")
    assert "Pixel Art XL" in _names(b, "retro 16-bit game sprites")
    for kind, index in b.registry.indexes.items():
        assert index.ids == a.registry.indexes[kind].ids, kind


def test_shared_mode_follows_in_the_background(tmp_path: Path, shared_db_url: str) -> None:
    a = _replica(tmp_path, "a", shared_db_url)
    b = _replica(tmp_path, "b", shared_db_url, text_encoder=a.text_encoder, mode="shared", catch_up_interval=0.05)
    try:
        assert b._follower is not None and a._follower is None  # embedded A does not follow
        a.ingest([SAMPLES / "sql_helper_llama"])
        deadline = time.monotonic() + 60  # a liveness bound, not a speed figure (see benchmarks/replicas.py)
        while "sql_helper_llama" not in _names(b, "write sql for my database table"):
            assert time.monotonic() < deadline, "replica B never caught up"
            time.sleep(0.05)
        follower = b._follower
        assert follower.errors == 0
    finally:
        b.close()
        a.close()
    assert b._follower is None and not follower._thread.is_alive()  # close stops the follower


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode 'cluster'; known: embedded, shared"):
        LocalService(mode="cluster")


def test_serve_in_shared_mode_follows_and_cli_reads_the_settings(tmp_path: Path, monkeypatch) -> None:
    from ui.cli import _settings, build_parser
    from ui.server import prepare

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    shared = prepare(tmp_path / "a", url, samples=False, mode="shared", blob_dir=tmp_path / "blobs")
    embedded = prepare(tmp_path / "b", url, samples=False, text_model=None)
    try:
        assert shared.service._follower is not None and embedded.service._follower is None
        assert shared.service.registry.blobs.root == tmp_path / "blobs"
    finally:
        shared.service.close()
        embedded.service.close()
    monkeypatch.setenv("LORADEX_MODE", "shared")
    monkeypatch.setenv("LORADEX_BLOB_DIR", str(tmp_path / "shared-blobs"))
    settings = _settings(build_parser().parse_args(["serve"]))
    assert (settings.mode, settings.blob_dir) == ("shared", tmp_path / "shared-blobs")
    assert _settings(build_parser().parse_args(["--deployment", "embedded", "serve"])).mode == "embedded"
    monkeypatch.setenv("LORADEX_CATCH_UP_INTERVAL", "soon")
    with pytest.raises(ValueError, match="LORADEX_CATCH_UP_INTERVAL='soon' is not a number"):
        _settings(build_parser().parse_args(["serve"]))


def test_replicas_starting_at_once_on_a_fresh_database(tmp_path: Path, shared_db_url: str) -> None:
    """Each replica migrates when it opens; on PostgreSQL an advisory lock lets only one run the
    migrations while the others wait, so none fails on tables another just created."""
    from concurrent.futures import ThreadPoolExecutor

    from registry.store import Registry

    def open_one(i: int) -> str:
        reg = Registry(tmp_path / f"r{i}", shared_db_url)
        try:
            reg.init()
            with reg.engine.connect() as conn:
                return str(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar())
        finally:
            reg.close()

    with ThreadPoolExecutor(3) as pool:
        versions = list(pool.map(open_one, range(3)))
    assert versions == ["0007"] * 3
