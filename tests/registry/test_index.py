"""FAISS index consistency: add / remove / rebuild, never served stale."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from registry.index import INDEX_TYPES, VectorIndex, bytes_to_vector, vector_to_bytes


class HashEmbedder:
    """A deterministic embedder for index tests: unit vector seeded by the adapter name."""

    kind = "text"

    def __init__(self, version: str = "hash-v1", dim: int = 16) -> None:
        self.version, self.dim = version, dim

    def embed(self, info, load):
        seed = int.from_bytes(hashlib.sha256(f"{self.version}/{info['name']}".encode()).digest()[:4], "little")
        rng = np.random.default_rng(seed)
        v = rng.standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)


def make_registry(tmp_path: Path, db_url: str, version: str = "hash-v1", index_type: str = "flat"):
    from registry.store import Registry

    reg = Registry(tmp_path / "home", db_url, embedders=[HashEmbedder(version)], index_type=index_type)
    reg.init()
    return reg


SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"


def test_vector_bytes_roundtrip() -> None:
    v = np.arange(5, dtype=np.float32)
    assert np.array_equal(bytes_to_vector(vector_to_bytes(v), 5), v)
    with pytest.raises(ValueError):
        bytes_to_vector(vector_to_bytes(v), 6)


@pytest.mark.parametrize("index_type", INDEX_TYPES)
def test_index_follows_ingest_and_remove(tmp_path: Path, db_url: str, index_type: str) -> None:
    reg = make_registry(tmp_path, db_url, index_type=index_type)
    rep = reg.ingest([SAMPLES])
    ids = {r.adapter_id for r in rep.results}
    index = reg.indexes["text"]
    assert index.ids == ids and len(ids) == 6
    victim = min(ids)
    vec = HashEmbedder().embed({"name": reg.get(victim)["name"]}, None)
    assert index.search(vec, 1)[0][0] == victim
    reg.remove(victim)
    assert index.ids == ids - {victim}
    assert all(i != victim for i, _ in index.search(vec, 10))
    # Filtered search only returns allowed ids.
    allowed = set(sorted(ids - {victim})[:2])
    assert {i for i, _ in index.search(vec, 10, allowed)} == allowed
    # ... and excluded ids never, with or without an allowed set
    rest = ids - {victim}
    assert {i for i, _ in index.search(vec, 10, excluded=allowed)} == rest - allowed
    assert {i for i, _ in index.search(vec, 10, rest, excluded=allowed)} == rest - allowed
    assert index.search(vec, 10, excluded=rest) == [] and index.search(vec, 10, allowed, allowed) == []
    reg.close()
    # A new process sees the persisted index, consistent with the database: no rebuild.
    reg2 = make_registry(tmp_path, db_url, index_type=index_type)
    assert reg2.indexes["text"].ids == ids - {victim}
    with reg2.sessions() as s:
        assert reg2.indexes["text"].sync(s, "hash-v1") is False
    reg2.close()


def test_stale_or_missing_index_is_rebuilt(tmp_path: Path, db_url: str) -> None:
    reg = make_registry(tmp_path, db_url)
    reg.ingest([SAMPLES])
    ids = reg.indexes["text"].ids
    meta = tmp_path / "home" / "index" / "text.json"
    # Stale: the persisted index claims other contents.
    doc = json.loads(meta.read_text())
    doc["digest"] = "0" * 64
    meta.write_text(json.dumps(doc))
    fresh = VectorIndex(tmp_path / "home" / "index", "text")
    with reg.sessions() as s:
        assert fresh.sync(s, "hash-v1") is True
    assert fresh.ids == ids
    # Missing: deleted index file.
    (tmp_path / "home" / "index" / "text.faiss").unlink()
    fresh = VectorIndex(tmp_path / "home" / "index", "text")
    with reg.sessions() as s:
        assert fresh.sync(s, "hash-v1") is True
    assert fresh.ids == ids
    reg.close()


def test_encoder_version_change_forces_reembed(tmp_path: Path, db_url: str) -> None:
    reg = make_registry(tmp_path, db_url, version="hash-v1")
    reg.ingest([SAMPLES])
    reg.close()
    reg2 = make_registry(tmp_path, db_url, version="hash-v2")  # init re-embeds with the new version
    index = reg2.indexes["text"]
    assert index.version == "hash-v2" and len(index) == 6
    from sqlalchemy import select

    from registry.models import AdapterEmbedding

    with reg2.sessions() as s:
        versions = set(s.scalars(select(AdapterEmbedding.encoder_version)))
    assert versions == {"hash-v2"}
    reg2.close()


def test_refused_ingest_leaves_index_unchanged(tmp_path: Path, db_url: str) -> None:
    reg = make_registry(tmp_path, db_url)
    reg.ingest([SAMPLES / "shakespeare_gpt2"])
    before = (reg.indexes["text"].ids, (tmp_path / "home" / "index" / "text.json").read_text())
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    assert reg.ingest([bad]).results[0].status == "refused"
    assert (reg.indexes["text"].ids, (tmp_path / "home" / "index" / "text.json").read_text()) == before
    reg.close()


def test_remove_without_embedders_invalidates_persisted_index(tmp_path: Path, db_url: str) -> None:
    """The CLI removes through a bare registry: the persisted index must not keep the id."""
    from registry.store import Registry

    reg = make_registry(tmp_path, db_url)
    ids = {r.adapter_id for r in reg.ingest([SAMPLES]).results}
    vec = HashEmbedder().embed({"name": reg.get(min(ids))["name"]}, None)
    scores = reg.indexes["text"].score_ids(vec, sorted(ids) + [10_000])
    assert set(scores) == ids and scores[min(ids)] == pytest.approx(1.0, abs=1e-5)
    reg.close()
    bare = Registry(tmp_path / "home", db_url)
    bare.remove(min(ids))
    bare.close()
    reg2 = make_registry(tmp_path, db_url)
    assert reg2.indexes["text"].ids == ids - {min(ids)}
    reg2.close()


class PartialEmbedder(HashEmbedder):
    """Embeds only adapters whose name is in ``names`` (like a weight embedder with encoders for some families)."""

    def __init__(self, version: str, names: set[str]) -> None:
        super().__init__(version)
        self.names = names
        self.calls = 0

    def embed(self, info, load):
        self.calls += 1
        return super().embed(info, load) if info["name"] in self.names else None


def test_sync_drops_stale_vectors_the_new_encoder_does_not_cover(tmp_path: Path, db_url: str) -> None:
    from registry.models import AdapterEmbedding
    from registry.store import Registry

    reg = make_registry(tmp_path, db_url)
    reg.ingest([SAMPLES])  # every sample embedded by hash-v1
    names = {r["name"] for r in reg.list()}
    assert len(names) == 6
    reg.close()
    keep = {"watercolor_sd15"}
    emb = PartialEmbedder("hash-v2", keep)
    reg2 = Registry(tmp_path / "home", db_url, embedders=[emb])
    reg2.init()
    with reg2.sessions() as s:
        rows = s.query(AdapterEmbedding).all()
    assert {(r.encoder_version) for r in rows} == {"hash-v2"} and len(rows) == 1  # stale v1 vectors are gone
    assert {reg2.get(i)["name"] for i in reg2.indexes["text"].ids} == keep
    assert emb.calls == len(names)
    emb.calls = 0
    reg2.init()  # again: the uncovered adapters are asked again (cheap) but nothing changes
    assert reg2.indexes["text"].ids == {r.adapter_id for r in rows}
    reg2.close()


def test_ivf_index_trains_at_rebuild_and_is_reloaded_without_one(tmp_path: Path, db_url: str) -> None:
    from registry.index import IVFParams

    reg = make_registry(tmp_path, db_url)
    ids = {r.adapter_id for r in reg.ingest([SAMPLES]).results}
    params = IVFParams(nprobe=1, nlist=2, min_train=4)  # the 6 samples are enough to train here
    folder = tmp_path / "ivf-index"
    index = VectorIndex(folder, "text", "ivf", ivf=params)
    with reg.sessions() as s:
        assert index.sync(s, "hash-v1") is True  # nothing persisted yet: rebuilt from the database
    assert index.structure == "ivf2,flat" and index.ids == ids
    for i in ids:  # every adapter finds itself, whichever list it is in
        vec = HashEmbedder().embed({"name": reg.get(i)["name"]}, None)
        assert index.search(vec, 1)[0][0] == i
    again = VectorIndex(folder, "text", "ivf", ivf=params)
    with reg.sessions() as s:
        assert again.sync(s, "hash-v1") is False  # the persisted IVF index matches: loaded as it is
    assert again.structure == "ivf2,flat" and again.ids == ids
    reg.close()
