"""The fast ingest path (one torch thread per pool thread, one finiteness check per dtype, indexes
saved once per batch) stores exactly what reading each file on its own gives: rows, blobs, vectors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from loradex.service import LocalService
from registry.ingest import discover, prepare
from registry.store import adapter_detail

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "text" / "adapters"


@pytest.fixture
def sources(real_adapters: Path, tmp_path: Path) -> Path:
    """The real fixtures plus a few committed text-zoo adapters (which the bundled weight encoder embeds)."""
    root = tmp_path / "sources"
    shutil.copytree(real_adapters, root / "real")
    zoo = sorted(p for p in ZOO.iterdir() if p.is_dir())
    assert zoo, f"no text zoo adapters under {ZOO}"
    for p in zoo[:6]:
        shutil.copytree(p, root / "zoo" / p.name)
    return root


def test_ingest_stores_what_each_file_reads_to(sources: Path, tmp_path: Path, db_url: str) -> None:
    import torch

    svc = LocalService.open(tmp_path / "home", db_url)
    threads_before = torch.get_num_threads()
    report = svc.ingest([sources])
    assert torch.get_num_threads() == threads_before  # the caller's torch setting is given back
    assert report.count("ingested") == 18, report.to_dict()
    reg = svc.registry
    weights_seen = 0
    with_vector: dict[str, set[int]] = {k: set() for k in reg.embedders}
    for unit, res in zip(discover([sources]), report.results, strict=True):
        prep = prepare(unit)  # on its own, in this thread, with torch's default threads
        with reg.sessions() as s:
            from registry import crud

            row = crud.find_adapter(session=s, ref=res.adapter_id)
            assert row is not None
            stored = adapter_detail(row)
        want = prep.row_fields()
        for key in ("sha256", "name", "family", "format", "ranks", "module_count", "modules", "param_count",
                    "file_size", "files", "description", "trigger_words", "license", "source", "base_model",
                    "warnings"):  # fmt: skip
            assert stored[key] == want[key], (unit.path, key)
        assert stored["metadata"] == want["meta"], unit.path
        folder = reg.blobs.path(prep.sha256)
        for f in prep.source.files:
            assert (folder / f.name).read_bytes() == f.read_bytes(), f
        info = {**want, "tags": list(prep.adapter.tags)}
        vecs = reg.embeddings_of(res.adapter_id)
        for kind in vecs:
            with_vector[kind].add(res.adapter_id)
        for kind, emb in reg.embedders.items():
            expected = emb.embed(info, lambda p=prep: p.adapter)  # type: ignore[misc]
            if expected is None:
                assert kind not in vecs, (unit.path, kind)
                continue
            weights_seen += kind == "weights"
            np.testing.assert_allclose(vecs[kind], expected, atol=1e-6, err_msg=f"{unit.path} {kind}")
    assert weights_seen == 6  # the zoo adapters got weight vectors
    # Indexes were saved once, at the end of the batch: a reopened registry loads them as they are.
    for kind, index in reg.indexes.items():
        assert index.ids == with_vector[kind], kind
    svc.close()
    again = LocalService.open(tmp_path / "home", db_url, sync=False)
    with again.registry.sessions() as s:
        for kind, index in again.registry.indexes.items():
            assert index.sync(s, again.registry.embedders[kind].version) is False, kind
    again.close()
