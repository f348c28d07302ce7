"""Suite ``workers_scale``: its synthetic adapters are real zoo-like adapters, each its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.worker_ingest_scale import ZOOS, Synthetic, stage


def test_synthetic_adapters_ingest_with_their_own_content_and_text(tmp_path: Path) -> None:
    if not all(z.is_dir() for z in ZOOS):
        pytest.skip("the zoos are not built")
    from registry.store import Registry

    synth = Synthetic()
    assert {t.parent for t in synth.templates[:2]} == set(ZOOS)  # image and text in turn
    folders = stage(synth, 0, 4, tmp_path / "up", batch=3)
    assert [len(list(f.iterdir())) for f in folders] == [3, 1]
    reg = Registry(tmp_path / "home", f"sqlite:///{tmp_path / 'r.db'}")
    reg.init()
    report = reg.ingest(folders)
    assert report.count("ingested") == 4, report.results
    rows = reg.list(None)
    assert len({r["sha256"] for r in rows}) == 4
    variants = {int(r["description"].rsplit("(variant ", 1)[1].rstrip(")")): r["family"] for r in rows}
    assert variants == {0: "zoo-image", 1: "zoo-text", 2: "zoo-image", 3: "zoo-text"}
    reg.close()
