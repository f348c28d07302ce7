"""FAISS vector indexes over the embeddings stored in the database.

The database is the source of truth; an index is a cache persisted next to it
(``<home>/index/<kind>.faiss`` + ``<kind>.json``). ``VectorIndex.sync`` compares the persisted
index with the database (ids, encoder version) and rebuilds it from the stored embeddings when
it is missing or stale, so a stale index is never served. ``faiss`` is imported lazily.

Index types: ``flat`` (``IndexIDMap2`` over ``IndexFlatIP``: exact cosine on normalized
vectors, supports removal) and ``hnsw`` (approximate, for large registries; HNSW cannot
remove, so removals rebuild it).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models import AdapterEmbedding

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

INDEX_TYPES = ("flat", "hnsw")


def vector_to_bytes(v: np.ndarray) -> bytes:
    import numpy as np

    return np.ascontiguousarray(v, dtype="<f4").tobytes()


def bytes_to_vector(b: bytes, dim: int) -> np.ndarray:
    import numpy as np

    v = np.frombuffer(b, dtype="<f4")
    if v.size != dim:
        raise ValueError(f"stored vector has {v.size} values, expected {dim}")
    return v


def ids_digest(ids: list[int], version: str) -> str:
    h = hashlib.sha256(version.encode())
    for i in sorted(ids):
        h.update(i.to_bytes(8, "little", signed=True))
    return h.hexdigest()


class VectorIndex:
    """One FAISS index for one embedding kind (``text`` or ``weights``) and encoder version."""

    def __init__(self, folder: Path, kind: str, index_type: str = "flat") -> None:
        if index_type not in INDEX_TYPES:
            raise ValueError(f"unknown index type {index_type!r}; known: {', '.join(INDEX_TYPES)}")
        self.folder = Path(folder)
        self.kind = kind
        self.index_type = index_type
        self.version: str | None = None
        self.dim: int | None = None
        self._index: Any = None
        self._ids: set[int] = set()
        self._lock = threading.RLock()

    # -- persistence -----------------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return self.folder / f"{self.kind}.faiss"

    @property
    def meta_path(self) -> Path:
        return self.folder / f"{self.kind}.json"

    def _db_state(self, session: Session, version: str | None) -> tuple[list[int], str | None]:
        q = select(AdapterEmbedding.adapter_id, AdapterEmbedding.encoder_version).where(
            AdapterEmbedding.kind == self.kind
        )
        rows = session.execute(q).all()
        versions = {v for _, v in rows}
        if version is None:
            version = max(versions) if len(versions) == 1 else (sorted(versions)[-1] if versions else None)
        return sorted(i for i, v in rows if v == version), version

    def sync(self, session: Session, version: str | None = None) -> bool:
        """Load the persisted index if it matches the database, else rebuild. True if rebuilt."""
        with self._lock:
            ids, version = self._db_state(session, version)
            self.version = version
            digest = ids_digest(ids, version or "")
            if self.meta_path.is_file() and self.index_path.is_file():
                try:
                    meta = json.loads(self.meta_path.read_text())
                    if meta.get("digest") == digest and meta.get("index_type") == self.index_type:
                        import faiss

                        self._index = faiss.read_index(str(self.index_path))
                        self.dim = int(meta["dim"]) if meta.get("dim") else None
                        self._ids = set(ids)
                        if self._index.ntotal == len(ids):
                            return False
                except (OSError, ValueError, RuntimeError, KeyError):
                    pass  # unreadable: rebuild below
            self.rebuild(session)
            return True

    def rebuild(self, session: Session) -> None:
        """Rebuild from the stored embeddings of ``self.version`` and persist."""
        import numpy as np

        with self._lock:
            q = select(AdapterEmbedding).where(AdapterEmbedding.kind == self.kind)
            if self.version is not None:
                q = q.where(AdapterEmbedding.encoder_version == self.version)
            rows = session.scalars(q.order_by(AdapterEmbedding.adapter_id)).all()
            self._index = None
            self._ids = set()
            if rows:
                self.dim = rows[0].dim
                vecs = np.stack([bytes_to_vector(r.vector, r.dim) for r in rows])  # (n, dim)
                self._add_unlocked(np.array([r.adapter_id for r in rows], dtype=np.int64), vecs)
            self.save()

    def save(self) -> None:
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = {
                "kind": self.kind,
                "index_type": self.index_type,
                "version": self.version,
                "dim": self.dim,
                "count": len(self._ids),
                "digest": ids_digest(sorted(self._ids), self.version or ""),
            }
            if self._index is not None:
                import faiss

                tmp = self.index_path.with_suffix(f".faiss.{os.getpid()}.{threading.get_ident()}.tmp")  # per writer
                faiss.write_index(self._index, str(tmp))
                os.replace(tmp, self.index_path)
            elif self.index_path.exists():
                self.index_path.unlink()
            tmp_meta = self.meta_path.with_suffix(f".json.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp_meta.write_text(json.dumps(meta))
            os.replace(tmp_meta, self.meta_path)

    # -- updates ---------------------------------------------------------------------------
    def _new_index(self, dim: int) -> Any:
        import faiss

        if self.index_type == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efSearch = 64
            return faiss.IndexIDMap2(inner)
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def _add_unlocked(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        import numpy as np

        vecs = np.ascontiguousarray(vecs, dtype=np.float32)  # (n, dim)
        if self._index is None:
            self.dim = int(vecs.shape[1])
            self._index = self._new_index(self.dim)
        if vecs.shape[1] != self.dim:
            raise ValueError(f"vector dim {vecs.shape[1]} does not match index dim {self.dim}")
        self._index.add_with_ids(vecs, np.ascontiguousarray(ids, dtype=np.int64))
        self._ids.update(int(i) for i in ids)

    def add(self, ids: list[int], vecs: np.ndarray, version: str) -> None:
        import numpy as np

        with self._lock:
            if self.version not in (None, version):
                raise ValueError(f"index holds {self.version!r} embeddings, refusing to mix in {version!r}")
            self.version = version
            fresh = [i for i in ids if i in self._ids]
            if fresh:
                self._remove_unlocked(fresh)
            self._add_unlocked(np.asarray(ids, dtype=np.int64), vecs)

    def _remove_unlocked(self, ids: list[int]) -> None:
        import numpy as np

        present = [i for i in ids if i in self._ids]
        if not present or self._index is None:
            return
        if self.index_type == "hnsw":  # HNSW cannot remove: rebuild without them
            keep = sorted(self._ids - set(present))
            vecs = np.stack([self._index.reconstruct(i) for i in keep]) if keep else None
            self._index, self._ids = None, set()
            if vecs is not None:
                self._add_unlocked(np.asarray(keep, dtype=np.int64), vecs)
            return
        self._index.remove_ids(np.asarray(present, dtype=np.int64))
        self._ids.difference_update(present)

    def remove(self, ids: list[int]) -> None:
        with self._lock:
            self._remove_unlocked(ids)

    # -- queries ---------------------------------------------------------------------------
    @property
    def ids(self) -> set[int]:
        return set(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def search(
        self, query: np.ndarray, k: int, allowed: set[int] | None = None, excluded: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (adapter id, cosine) for one normalized query vector (dim,), over ``allowed`` ids
        (None: all) minus ``excluded`` ones."""
        import numpy as np

        with self._lock:
            if self._index is None or not self._ids or k <= 0:
                return []
            q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)  # (1, dim)
            if allowed is not None and excluded:
                allowed, excluded = allowed - excluded, None
            if allowed is not None or excluded:
                import faiss

                sel: Any
                if allowed is not None:
                    allowed = allowed & self._ids
                    if not allowed:
                        return []
                    sel = faiss.IDSelectorBatch(np.asarray(sorted(allowed), dtype=np.int64))
                    n = len(allowed)
                else:
                    assert excluded is not None
                    present = self._ids & excluded  # only ids in the index need excluding
                    n = len(self._ids) - len(present)
                    if not n:
                        return []
                    batch = faiss.IDSelectorBatch(np.asarray(sorted(present), dtype=np.int64))
                    sel = faiss.IDSelectorNot(batch)
                    sel.keep_alive = batch  # type: ignore[attr-defined]  # the Python object owns the C++ one
                params = (
                    faiss.SearchParametersHNSW(sel=sel)  # type: ignore[attr-defined]
                    if self.index_type == "hnsw"
                    else faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]
                )
                scores, ids = self._index.search(q, min(k, n), params=params)
            else:
                scores, ids = self._index.search(q, min(k, len(self._ids)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def score_ids(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Exact cosine of the query (dim,) with the stored vectors of ``ids`` (those in the index)."""
        import numpy as np

        with self._lock:
            have = [i for i in ids if i in self._ids]
            if not have or self._index is None:
                return {}
            vecs = np.stack([self._index.reconstruct(int(i)) for i in have])  # (m, dim)
        q = np.asarray(query, dtype=np.float32).reshape(-1)  # (dim,)
        return {i: float(s) for i, s in zip(have, vecs @ q, strict=True)}
