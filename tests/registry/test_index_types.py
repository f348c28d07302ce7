"""The compressed and IVF index types: add, search, remove, persistence and recall against exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from registry.index import IVFParams, VectorIndex

DIM = 32
SMALL_IVF = IVFParams(nprobe=8, nlist=32, min_train=1_000)


def clustered(n: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, DIM) unit vectors around 40 centres, and (n_queries, DIM) queries near the same centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM))
    emb = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, DIM))
    queries = centres[rng.integers(0, 40, n_queries)] + 0.6 * rng.standard_normal((n_queries, DIM))
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return unit(emb), unit(queries)


def exact_top(emb: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> set[int]:
    return {int(i) for i in ids[np.argsort(-(emb @ q))[:k]]}


def make(tmp_path: Path, index_type: str, n: int = 3_000) -> tuple[VectorIndex, np.ndarray, np.ndarray, np.ndarray]:
    emb, queries = clustered(n, 50)
    ids = np.arange(1, n + 1) * 7  # ids that are not row numbers
    index = VectorIndex(tmp_path / "index", "text", index_type, ivf=SMALL_IVF)
    index.add(ids.tolist(), emb, "v1")
    return index, emb, ids, queries


@pytest.mark.parametrize("index_type", ["fp16", "ivf", "ivf_sq8"])
def test_recall_against_exact(tmp_path: Path, index_type: str) -> None:
    index, emb, ids, queries = make(tmp_path, index_type)
    assert index.structure == {"fp16": "fp16", "ivf": "ivf32,flat", "ivf_sq8": "ivf32,sq8"}[index_type]
    hits = [len({i for i, _ in index.search(q, 10)} & exact_top(emb, ids, q, 10)) for q in queries]
    assert sum(hits) / (10 * len(queries)) >= 0.9
    # scores are cosines (approximately, for compressed codes)
    (top, score), *_ = index.search(queries[0], 1)
    assert score == pytest.approx(float(emb[list(ids).index(top)] @ queries[0]), abs=0.02)


@pytest.mark.parametrize("index_type", ["fp16", "ivf", "ivf_sq8"])
def test_remove_filter_and_reload(tmp_path: Path, index_type: str) -> None:
    index, emb, ids, queries = make(tmp_path, index_type)
    q = emb[10]
    assert index.search(q, 1)[0][0] == ids[10]
    index.remove([int(ids[10]), int(ids[11])])
    assert len(index) == len(ids) - 2 and int(ids[10]) not in index.ids
    assert all(i not in (ids[10], ids[11]) for i, _ in index.search(q, 50))
    # re-adding an id replaces its vector
    index.add([int(ids[12])], -emb[12:13], "v1")
    assert len(index) == len(ids) - 2
    assert index.score_ids(q, [int(ids[12])])[int(ids[12])] == pytest.approx(float(-emb[12] @ q), abs=0.02)
    # filters: a few allowed ids far from the query are all found (IVF widens to every list)
    far = [int(i) for i in ids[np.argsort(emb @ q)[:3]]]
    assert {i for i, _ in index.search(q, 10, allowed=set(far))} == set(far)
    # a k beyond what the probed lists hold still gets k results, best first, as from flat
    many = index.search(q, 2_000)
    assert len(many) == 2_000 and len({i for i, _ in many}) == 2_000
    assert all(a[1] >= b[1] - 1e-6 for a, b in zip(many, many[1:], strict=False))
    excluded = {i for i, _ in index.search(q, 5)}
    assert not excluded & {i for i, _ in index.search(q, 10, excluded=excluded)}
    # persisted and read back: same results, same structure, still removable
    index.save()
    back = VectorIndex(tmp_path / "index", "text", index_type, ivf=SMALL_IVF)
    import faiss

    back._index = faiss.read_index(str(index.index_path))
    back._ids, back.dim, back.version = index.ids, index.dim, index.version
    back.apply_search_params()
    assert back.structure == index.structure
    assert [i for i, _ in back.search(q, 10)] == [i for i, _ in index.search(q, 10)]
    back.remove([int(ids[13])])
    assert int(ids[13]) not in {i for i, _ in back.search(emb[13], 5)}


def test_ivf_is_flat_until_enough_vectors_then_trains(tmp_path: Path) -> None:
    emb, _ = clustered(1_200, 1)
    index = VectorIndex(tmp_path / "index", "text", "ivf", ivf=SMALL_IVF)
    index.add(list(range(1, 801)), emb[:800], "v1")
    assert index.structure == "flat"  # 800 < min_train: exact flat search
    assert index.search(emb[5], 1)[0][0] == 6
    index.remove([6])
    index.add(list(range(801, 1_201)), emb[800:], "v1")  # crosses min_train: trained on all 1199
    assert index.structure == "ivf32,flat" and len(index) == 1_199
    assert index.search(emb[900], 1)[0][0] == 901
    assert 6 not in {i for i, _ in index.search(emb[5], 20)}
    assert index.search(emb[100], 1)[0][0] == 101  # moved from the flat index with its id


def test_ivf_params_are_checked() -> None:
    with pytest.raises(ValueError, match="nprobe"):
        IVFParams(nprobe=0)
    assert IVFParams().lists_for(1_000_000) == 4096 and IVFParams().lists_for(100_000) == 1024
    assert IVFParams(nlist=64).lists_for(10) == 10
