"""Suite ``scale`` at tiny N: it runs end to end through the harness and writes what it promises.
Behaviour only; the timings it records are never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.retrieval_scale import clustered, descriptions, numpy_topk, prompts, recall_at_k


def test_clustered_embeddings_are_unit_norm_and_reproducible() -> None:
    emb, queries = clustered(500, 20, seed=3)
    assert emb.shape == (500, 384) and queries.shape == (20, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(emb, clustered(500, 20, seed=3)[0])
    top = numpy_topk(emb, queries[0])
    scores = emb @ queries[0]
    assert list(top) == list(np.argsort(-scores)[:10])
    assert scores[top[0]] > 0.5  # clustered: a query has close neighbours, unlike uniform noise


def test_text_sets_are_distinct() -> None:
    assert len(set(descriptions(400))) == 400
    assert len(set(prompts(300))) == 300
    assert recall_at_k([[1, 2], [3, 4]], [[1, 2], [3, 5]]) == 0.75


def test_scale_suite_quick_writes_results(tmp_path: Path) -> None:
    from benchmarks.run import main

    assert main(["scale", "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "scale.json").read_text())
    assert (tmp_path / "scale.md").read_text().startswith("# scale")
    assert {"machine", "config", "threads", "build_seconds", "text_int8", "rows"} <= set(result)
    assert result["config"]["sizes"] == [300]
    methods = {r["method"] for r in result["rows"] if r["N"] == 300}
    assert any(m.startswith("numpy") for m in methods)
    assert {"end-to-end flat, cold prompt", "end-to-end hnsw, warm prompt"} <= methods
    for r in result["rows"]:
        assert {"N", "method", "p50_ms", "p99_ms", "ratio_to_baseline_p50", "recall_at_10"} <= set(r)
        assert r["p99_ms"] >= r["p50_ms"] > 0
    by_method = {r["method"]: r for r in result["rows"] if r["N"] == 300}
    assert by_method["VectorIndex flat (IndexFlatIP)"]["recall_at_10"] == 1.0  # exact search
    assert 0.0 < by_method["VectorIndex hnsw (M=32, efSearch=64)"]["recall_at_10"] <= 1.0
    text = result["text_int8"]
    assert text["int8_version"].endswith(":int8-sq65")
    assert 0.0 < text["recall_at_10_int8_queries_float_gallery"] <= 1.0
    assert text["cosine_int8_vs_float"]["min"] > 0.9


def test_scale_1m_suite_quick_writes_a_row_per_index_type(tmp_path: Path) -> None:
    from benchmarks.run import main

    assert main(["scale_1m", "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "scale_1m.json").read_text())
    assert result["threads"]["faiss_search"] == 1 and result["target"]["N"] == 2_000
    rows = result["rows"]
    assert {r["index_type"] for r in rows} == {"flat", "fp16", "hnsw", "ivf", "ivf_sq8"}
    by = {(r["index_type"], r["nprobe"]): r for r in rows}
    assert by[("flat", None)]["recall_at_10"] == 1.0  # exact search
    assert by[("ivf", 4)]["structure"].startswith("ivf") and ("ivf_sq8", 16) in by  # trained, one row per nprobe
    for r in rows:
        assert r["p99_ms"] >= r["p50_ms"] > 0 and r["index_MiB"] > 0 and 0.0 < r["recall_at_10"] <= 1.0
        assert isinstance(r["meets_target"], bool)
    # compressed codes take less room than float32
    assert by[("fp16", None)]["index_MiB"] < by[("flat", None)]["index_MiB"]
    assert by[("ivf_sq8", 4)]["index_MiB"] < by[("ivf", 4)]["index_MiB"]


def test_sizes_option_reaches_the_suites(tmp_path: Path) -> None:
    from benchmarks.run import main

    assert main(["scale_1m", "--quick", "--sizes", "1e3", "--types", "flat,ivf", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "scale_1m.json").read_text())
    assert result["config"]["sizes"] == [1000] and {r["index_type"] for r in result["rows"]} == {"flat", "ivf"}
    with pytest.raises(ValueError, match="unknown index types"):
        main(["scale_1m", "--quick", "--types", "pq", "--out", str(tmp_path)])


def test_overlapping_embeddings_are_unit_norm_and_harder_than_clustered() -> None:
    from benchmarks.retrieval_scale_index import IndexScaleConfig, exact_topk, overlapping

    emb, queries = overlapping(2_000, 10, seed=2)
    assert emb.shape == (2_000, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(emb, overlapping(2_000, 10, seed=2)[0])
    top = exact_topk(emb, queries)
    assert top[0] == list(numpy_topk(emb, queries[0]))
    easy, easy_q = clustered(2_000, 10, seed=2)
    assert (emb @ queries.T).max(0).mean() < (easy @ easy_q.T).max(0).mean()  # neighbours farther away
    with pytest.raises(ValueError, match="unknown data"):
        IndexScaleConfig(data="uniform")
