"""``loradex search`` / ``train-encoder`` / ``encoders`` end to end on a tiny text zoo plus the samples."""

from __future__ import annotations

import json
from pathlib import Path

from tests.ui.test_cli import SAMPLES, run


def test_train_encoder_then_search(capsys, tiny_text_zoo: Path, tmp_path: Path, db_url: str) -> None:
    from benchmarks.zoo import training_texts

    home = ["--home", str(tmp_path / "home"), "--db", db_url]
    manifest = json.loads((tiny_text_zoo / "manifest.json").read_text())
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(training_texts(manifest)))
    code, out, _ = run(capsys, *home, "ingest", str(tiny_text_zoo / "adapters"), str(SAMPLES), "--json", "-q")
    assert code == 0 and json.loads(out)["ingested"] == manifest["counts"]["adapters"] + 6

    # no encoder yet: weights mode refuses clearly, hybrid says why it matched
    code, _, err = run(capsys, *home, "search", "reverse the string", "--mode", "weights")
    assert code == 2 and "no weight encoder" in err
    code, out, _ = run(capsys, *home, "search", "a soft watercolor painting", "--json", "-k", "3")
    hit = json.loads(out)["hits"][0]
    assert hit["adapter"]["name"] == "watercolor_sd15" and "no weight encoder for family sd1" in hit["why"]

    code, out, _ = run(capsys, *home, "train-encoder", "--family", "zoo-text", "--texts", str(texts),
                       "--only-listed", "--epochs", "30", "--val-fraction", "0", "--json", "-q")  # fmt: skip
    assert code == 0, out
    result = json.loads(out)
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
