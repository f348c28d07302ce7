"""Suite ``retrieval`` end to end on the tiny zoo, with a zoo encoder trained through the registry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def test_retrieval_suite_on_tiny_zoo(tiny_text_zoo: Path, tmp_path: Path) -> None:
    from benchmarks.retrieval import suite_retrieval, train_zoo_encoder

    trained = train_zoo_encoder(tiny_text_zoo, epochs=10, out=tmp_path / "enc", val_fraction=0.0)
    assert (tmp_path / "enc" / "model.safetensors").is_file()
    manifest = json.loads((tiny_text_zoo / "manifest.json").read_text())
    train_adapters = sum(len(t["adapters"]) for t in manifest["tasks"] if t["split"] == "train")
    assert trained["metrics"]["adapters"] == train_adapters  # held-out tasks never reach the encoder

    out = suite_retrieval(argparse.Namespace(zoo_dir=str(tiny_text_zoo), encoder_dir=str(tmp_path / "enc")))
    assert out["gallery"] == manifest["counts"]["adapters"]
    got = {(r["registry"], r["mode"], r["queries"]): r for r in out["rows"]}
    for mode in ("weights", "text", "hybrid", "random"):
        for q in ("unseen_paraphrases", "heldout_tasks"):
            r = got[("described", mode, q)]
            assert 0.0 <= r["recall@1"] <= r["recall@5"] <= r["recall@10"] <= 1.0
    # with descriptions hidden there is no text signal: hybrid ranks exactly as weights do
    for q in ("unseen_paraphrases", "heldout_tasks"):
        w, h = got[("descriptions hidden", "weights", q)], got[("descriptions hidden", "hybrid", q)]
        assert {k: w[k] for k in ("recall@1", "mrr")} == {k: h[k] for k in ("recall@1", "mrr")}
    assert out["ingest"]["ratio_to_bare"] > 0 and out["search_latency_ms"]["p50"] > 0
