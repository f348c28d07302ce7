"""``loradex search`` / ``train-encoder`` / ``encoders`` end to end on a tiny text zoo plus the samples."""

from __future__ import annotations

import json
from pathlib import Path

from tests.ui.test_cli import SAMPLES, run


def train_zoo_text(capsys, home: list[str], zoo: Path, tmp_path: Path, *extra: str) -> dict:
    """``loradex train-encoder --family zoo-text`` on the zoo's training texts (30 epochs); its JSON result."""
    from benchmarks.zoo import training_texts

    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(training_texts(json.loads((zoo / "manifest.json").read_text()))))
    code, out, _ = run(capsys, *home, "train-encoder", "--family", "zoo-text", "--texts", str(texts), "--only-listed",
                       "--epochs", "30", "--val-fraction", "0", *extra, "--json", "-q")  # fmt: skip
    assert code == 0, out
    return json.loads(out)


def test_train_encoder_then_search(capsys, tiny_text_zoo: Path, tmp_path: Path, db_url: str) -> None:
    from benchmarks.zoo import training_texts

    home = ["--home", str(tmp_path / "home"), "--db", db_url]
    manifest = json.loads((tiny_text_zoo / "manifest.json").read_text())
    code, out, _ = run(capsys, *home, "ingest", str(tiny_text_zoo / "adapters"), str(SAMPLES), "--json", "-q")
    assert code == 0 and json.loads(out)["ingested"] == manifest["counts"]["adapters"] + 6

    # no encoder yet: weights mode refuses clearly, hybrid says why it matched
    code, _, err = run(capsys, *home, "search", "reverse the string", "--mode", "weights")
    assert code == 2 and "no weight encoder" in err
    code, out, _ = run(capsys, *home, "search", "a soft watercolor painting", "--json", "-k", "3")
    hit = json.loads(out)["hits"][0]
    assert hit["adapter"]["name"] == "watercolor_sd15" and "no weight encoder for family sd1" in hit["why"]

    result = train_zoo_text(capsys, home, tiny_text_zoo, tmp_path)
    assert result["version"].startswith("w:zoo-text:") and Path(result["path"], "model.safetensors").is_file()
    assert result["metrics"]["adapters"] == len(training_texts(manifest))  # held-out tasks were not trained on
    code, out, _ = run(capsys, *home, "encoders", "--json")
    assert [e["version"] for e in json.loads(out)] == [result["version"]]

    # weights mode now answers, for zoo adapters only, with a weights score and no text score
    code, out, _ = run(capsys, *home, "search", "Reverse the string.", "--mode", "weights", "--json", "-k", "20")
    hits = json.loads(out)["hits"]
    assert hits and {h["adapter"]["family"] for h in hits} == {"zoo-text"}
    assert all(h["scores"]["weights"] is not None and "text" not in h["scores"] for h in hits)
    assert len(hits) == manifest["counts"]["adapters"]  # every zoo adapter has a weight embedding
    # hybrid: both signals, and the filter keeps other families out
    code, out, _ = run(capsys, *home, "search", "Reverse the string.", "--family", "zoo-text", "--json")
    hits = json.loads(out)["hits"]
    assert hits[0]["adapter"]["name"] == "reverse"
    assert hits[0]["scores"]["text"] is not None and hits[0]["scores"]["weights"] is not None
    # removal takes the adapter out of both indexes
    code, _, _ = run(capsys, *home, "remove", str(hits[0]["adapter"]["id"]))
    code, out, _ = run(capsys, *home, "search", "Reverse the string.", "--mode", "weights", "--json", "-k", "50")
    assert hits[0]["adapter"]["id"] not in {h["adapter"]["id"] for h in json.loads(out)["hits"]}
    # human output is a table
    code, out, _ = run(capsys, *home, "search", "pixel art sprites", "-k", "2")
    assert code == 0 and "Pixel Art XL" in out


def test_a_query_head_scores_prompts_for_its_family_only(capsys, tiny_text_zoo: Path, tmp_path: Path) -> None:
    """An encoder trained with ``--query-hidden`` scores a prompt through its head against its own
    family's adapters; the sample adapters (no encoder) are untouched by it."""
    import numpy as np

    from loradex.service import LocalService

    home = ["--home", str(tmp_path / "home")]
    manifest = json.loads((tiny_text_zoo / "manifest.json").read_text())
    run(capsys, *home, "ingest", str(tiny_text_zoo / "adapters"), str(SAMPLES), "-q")
    result = train_zoo_text(capsys, home, tiny_text_zoo, tmp_path, "--query-hidden", "64")
    config = json.loads(Path(result["path"], "config.json").read_text())
    assert (config["query_hidden"], config["query_raw_share"]) == (64, 0.5)  # the head's query keeps half the prompt
    assert result["metrics"]["train_config"]["raw_query_weight"] == 2.0  # trained on prompts as encoded too
    svc = LocalService.open(tmp_path / "home")
    try:
        assert svc.weight_embedder.query_families() == ["zoo-image", "zoo-text"]  # the bundled zoo-image has one too
        prompt = "Reverse the string."
        q = svc.text_encoder.encode([prompt])[0]
        headed = svc.weight_embedder.query("zoo-text", q)
        assert abs(float(np.linalg.norm(headed)) - 1) < 1e-5 and float(headed @ q) < 0.9999  # the head moved it
        hits = svc.search(prompt, 50, mode="weights")
        assert {h.adapter["family"] for h in hits} == {"zoo-text"}
        assert len(hits) == manifest["counts"]["adapters"]
        for h in hits:  # the score is the cosine with the head's query, recomputed from the adapter file
            e = svc.weight_embedder.embed_adapter(svc.registry.load(h.adapter["id"]))
            assert abs(h.scores["weights"] - float(e @ headed)) < 1e-4
        assert hits[0].adapter["name"] == "reverse"
        # hybrid still ranks the other families by their text, and a family filter keeps the head's family out
        top = svc.search("a soft watercolor painting", 3)
        assert top[0].adapter["name"] == "watercolor_sd15"
        assert all(h.adapter["family"] == "sd1" for h in svc.search("Reverse the string.", 5, family="sd1"))
    finally:
        svc.registry.close()
