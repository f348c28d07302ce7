"""Replicas opening at once after an encoder changed re-embed the registry once between them: on
PostgreSQL one holds an advisory lock while the others wait and find nothing left; every write
re-reads the stored row, so a vector of the current version is never written twice (and two
writers never insert the same row: a unique violation would stop a replica from starting)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from registry import changes
from registry.models import AdapterEmbedding
from registry.store import Registry
from tests.registry.test_index import SAMPLES, HashEmbedder


class SlowHashEmbedder(HashEmbedder):
    """HashEmbedder taking a little while per adapter, so that two replicas' passes overlap."""

    def embed(self, info, load):  # type: ignore[no-untyped-def]
        time.sleep(0.05)
        return super().embed(info, load)


def test_replicas_opening_at_once_after_an_encoder_change_embed_each_adapter_once(
    tmp_path: Path, shared_db_url: str
) -> None:
    first = Registry(tmp_path / "a", shared_db_url, embedders=[HashEmbedder("hash-v1")])
    first.init()
    n = first.ingest([SAMPLES]).count("ingested")
    assert n >= 3
    with first.sessions() as s:
        before = changes.head(session=s)
    first.close()

    replicas = [Registry(tmp_path / f"r{i}", shared_db_url, embedders=[SlowHashEmbedder("hash-v2")]) for i in range(3)]
    start = threading.Barrier(len(replicas))
    errors: list[BaseException] = []

    def open_one(reg: Registry) -> None:
        try:
            start.wait()
            reg.init()  # migrates, then sync_indexes → embed_missing
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=open_one, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    try:
        assert errors == []
        with replicas[0].sessions() as s:
            versions = dict(s.execute(select(AdapterEmbedding.encoder_version, func.count()).group_by(
                AdapterEmbedding.encoder_version)).all())  # fmt: skip
            written = [c for c in changes.read(session=s, after=before, limit=10_000) if c.op == "add"]
        assert versions == {"hash-v2": n}
        assert len(written) == n, f"{len(written)} re-embeddings written for {n} adapters"
        for reg in replicas:  # each serves every adapter at the new version
            assert reg.indexes["text"].version == "hash-v2" and len(reg.indexes["text"].ids) == n
    finally:
        for reg in replicas:
            reg.close()
