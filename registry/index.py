"""FAISS vector indexes over the embeddings stored in the database.

The database is the source of truth; an index is a cache persisted next to it
(``<home>/index/<kind>.faiss`` + ``<kind>.json``). ``VectorIndex.sync`` compares the persisted
index with the database (ids, encoder version) and rebuilds it from the stored embeddings when
it is missing or stale, so a stale index is never served. ``faiss`` is imported lazily.

Index types (``INDEX_TYPES``), chosen by configuration (``Settings.index_type``, ``--index``):

- ``flat``: ``IndexIDMap2`` over ``IndexFlatIP``: exact cosine on normalized vectors, removal in place.
- ``fp16``: the same over ``IndexScalarQuantizer(QT_fp16)``: half the memory, scores within ~1e-3
  of exact; brute force like ``flat``, no training.
- ``hnsw``: approximate graph (M=32, efSearch=64), for large registries; HNSW cannot remove, so
  removals rebuild it.
- ``ivf`` / ``ivf_sq8``: inverted lists (``IndexIVFFlat``, or ``IndexIVFScalarQuantizer`` with 8-bit
  codes, a quarter of the memory) searched over ``nprobe`` of ``nlist`` lists; ids live in the IVF
  index itself (a hashtable direct map gives removal and reconstruction by id). IVF needs training:
  it is trained on the vectors at hand once there are ``IVFParams.min_train`` of them (at a rebuild,
  or at the add that crosses the bound); below that the index is a plain ``flat`` one
  (``VectorIndex.structure`` says which). A search that finds fewer than k (allowed) ids in the
  probed lists is repeated over all lists, so IVF returns as many results as flat (filters, large k).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models import AdapterEmbedding

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

INDEX_TYPES = ("flat", "fp16", "hnsw", "ivf", "ivf_sq8")
IVF_TYPES = ("ivf", "ivf_sq8")


@dataclass(frozen=True)
class IVFParams:
    """Shape of an ``ivf`` / ``ivf_sq8`` index."""

    nprobe: int = 64  # lists searched per query (of nlist)
    nlist: int | None = None  # inverted lists; None: a power of two near 4·√n, in [64, 65536]
    min_train: int = 20_000  # fewer vectors than this: a flat index instead (k-means needs ~39·nlist points)
    train_sample: int = 64  # at most this many training points per list (a random sample of the vectors)

    def __post_init__(self) -> None:
        if (
            self.nprobe < 1
            or (self.nlist is not None and self.nlist < 1)
            or self.min_train < 1
            or self.train_sample < 1
        ):
            raise ValueError(f"IVF parameters must be ≥ 1, got {self}")

    def lists_for(self, n: int) -> int:
        """nlist for n training vectors (never more lists than vectors)."""
        if self.nlist is not None:
            return min(self.nlist, n)
        auto = 1 << max(6, min(16, round(math.log2(4 * math.sqrt(max(n, 1))))))
        return min(auto, n)


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

    def __init__(self, folder: Path, kind: str, index_type: str = "flat", ivf: IVFParams | None = None) -> None:
        if index_type not in INDEX_TYPES:
            raise ValueError(f"unknown index type {index_type!r}; known: {', '.join(INDEX_TYPES)}")
        self.folder = Path(folder)
        self.kind = kind
        self.index_type = index_type
        self.ivf = ivf or IVFParams()
        self.version: str | None = None
        self.dim: int | None = None
        self._index: Any = None
        self._ids: set[int] = set()
        self._lock = threading.RLock()
        self.changes = 0  # bumped whenever the ids held change: a cheap "same contents?" for caches

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
                        self.apply_search_params()
                        self.dim = int(meta["dim"]) if meta.get("dim") else None
                        self._ids = set(ids)
                        self.changes += 1
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
            self.changes += 1
            if rows:
                self.dim = rows[0].dim
                vecs = np.stack([bytes_to_vector(r.vector, r.dim) for r in rows])  # (n, dim)
                self._add_unlocked(np.array([r.adapter_id for r in rows], dtype=np.int64), vecs)
            self.save()

    def build(self, ids: list[int], vecs: np.ndarray, version: str) -> None:
        """Replace the contents with these vectors (n, dim) in one go (trains an IVF index on all of
        them), without persisting; ``rebuild`` does the same from the database."""
        import numpy as np

        with self._lock:
            self._index, self._ids, self.version = None, set(), version
            self.changes += 1
            self._add_unlocked(np.asarray(ids, dtype=np.int64), vecs)

    def save(self) -> None:
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = {
                "kind": self.kind,
                "index_type": self.index_type,
                "version": self.version,
                "dim": self.dim,
                "count": len(self._ids),
                "structure": self.structure,
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
    @property
    def structure(self) -> str:
        """What the index holds now: the type, or for IVF types ``ivf<nlist>,<codes>`` once trained
        (``flat`` while too few vectors to train one)."""
        ivf = self._ivf()
        if ivf is not None:
            return f"ivf{ivf.nlist},{'sq8' if self.index_type == 'ivf_sq8' else 'flat'}"
        return "flat" if self.index_type in IVF_TYPES else self.index_type

    def _ivf(self) -> Any:
        """The trained IVF index, or None (other types, or an IVF type still flat)."""
        if self._index is None or self.index_type not in IVF_TYPES:
            return None
        import faiss

        return faiss.try_extract_index_ivf(self._index)

    def apply_search_params(self) -> None:
        """Apply ``self.ivf.nprobe`` to a trained IVF index (after changing ``self.ivf``)."""
        ivf = self._ivf()
        if ivf is not None:
            ivf.nprobe = min(self.ivf.nprobe, ivf.nlist)

    def _new_index(self, dim: int) -> Any:
        import faiss

        if self.index_type == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efSearch = 64
            return faiss.IndexIDMap2(inner)
        if self.index_type == "fp16":
            return faiss.IndexIDMap2(
                faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
            )
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))  # flat, and IVF types until trained

    def _trained_ivf(self, vecs: np.ndarray) -> Any:
        """An empty IVF index trained on (a sample of) vecs (n, dim)."""
        import faiss
        import numpy as np

        n, dim = vecs.shape
        nlist = self.ivf.lists_for(n)
        quantizer: Any = faiss.IndexFlatIP(dim)
        index: Any
        if self.index_type == "ivf_sq8":
            index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT, False)  # fmt: skip
        else:
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True
        quantizer.this.disown()  # the IVF index frees its quantizer
        index.cp.niter = 10
        index.cp.max_points_per_centroid = self.ivf.train_sample
        sample = nlist * self.ivf.train_sample
        if n > sample:  # deterministic sample: the same vectors train the same index
            vecs = vecs[np.sort(np.random.default_rng(0).choice(n, sample, replace=False))]
        index.train(vecs)
        # a hashtable direct map: remove_ids and reconstruct by id
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        index.nprobe = min(self.ivf.nprobe, nlist)
        return index

    def _add_unlocked(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        import numpy as np

        vecs = np.ascontiguousarray(vecs, dtype=np.float32)  # (n, dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64)  # (n,)
        if self._index is not None and vecs.shape[1] != self.dim:
            raise ValueError(f"vector dim {vecs.shape[1]} does not match index dim {self.dim}")
        if self.index_type in IVF_TYPES and self._ivf() is None and len(self._ids) + len(ids) >= self.ivf.min_train:
            if self._index is not None and self._ids:  # enough vectors now: move the flat ones into a trained IVF
                import faiss

                old_ids = faiss.vector_to_array(self._index.id_map)  # (m,)
                old = self._index.index.reconstruct_n(0, self._index.ntotal)  # (m, dim)
                ids, vecs = np.concatenate([old_ids, ids]), np.concatenate([old, vecs])
                self._ids = set()
            self.dim = int(vecs.shape[1])
            self._index = self._trained_ivf(vecs)
        if self._index is None:
            self.dim = int(vecs.shape[1])
            self._index = self._new_index(self.dim)
        self._index.add_with_ids(vecs, ids)
        self._ids.update(ids.tolist())
        self.changes += 1

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
            self.changes += 1
            if vecs is not None:
                self._add_unlocked(np.asarray(keep, dtype=np.int64), vecs)
            return
        self._index.remove_ids(np.asarray(present, dtype=np.int64))
        self._ids.difference_update(present)
        self.changes += 1

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
                params: Any
                if self._ivf() is not None:
                    scores, ids = self._ivf_search(q, min(k, n), sel)
                else:
                    params = (
                        faiss.SearchParametersHNSW(sel=sel)  # type: ignore[attr-defined]
                        if self.index_type == "hnsw"
                        else faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]
                    )
                    scores, ids = self._index.search(q, min(k, n), params=params)
            elif self._ivf() is not None:
                scores, ids = self._ivf_search(q, min(k, len(self._ids)), None)
            else:
                scores, ids = self._index.search(q, min(k, len(self._ids)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _ivf_search(self, q: np.ndarray, k: int, sel: Any) -> tuple[np.ndarray, np.ndarray]:
        """IVF search over nprobe lists; when those hold fewer than k (allowed) vectors, over all
        lists, so that an IVF index returns as many results as a flat one."""
        import faiss

        ivf = self._ivf()
        params: Any = faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nprobe)  # type: ignore[call-arg]
        scores, ids = self._index.search(q, k, params=params)
        if (ids[0] >= 0).sum() < k and ivf.nprobe < ivf.nlist:
            params = faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nlist)  # type: ignore[call-arg]
            scores, ids = self._index.search(q, k, params=params)
        return scores, ids

    def score_ids(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Exact cosine of the query (dim,) with the stored vectors of ``ids`` (those in the index)."""
        import numpy as np

        with self._lock:
            have = [i for i in ids if i in self._ids]
            if not have or self._index is None:
                return {}
            vecs = self._index.reconstruct_batch(np.asarray(have, dtype=np.int64))  # (m, dim)
        q = np.asarray(query, dtype=np.float32).reshape(-1)  # (dim,)
        return {i: float(s) for i, s in zip(have, vecs @ q, strict=True)}
