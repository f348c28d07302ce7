"""Suite ``zoo``: the stacked re-evaluation reproduces the build's own accuracies."""

from __future__ import annotations

import argparse
from pathlib import Path


def test_zoo_suite_reproduces_manifest(tiny_text_zoo: Path, tmp_path: Path) -> None:
    from benchmarks.zoo_suite import suite_zoo

    no_image_zoo = str(tmp_path / "image")  # the image part has its own test (test_image_zoo.py)
    out = suite_zoo(argparse.Namespace(quick=False, zoo_dir=str(tiny_text_zoo), image_zoo_dir=no_image_zoo))
    text = out["zoos"]["text"]
    assert text["matches_manifest"] == text["tasks"] > 0  # same strings, same adapters → same scores
    assert {r["family"] for r in out["rows"]} == {"reverse", "caesar", "case", "append", "compose"}
    assert {"oracle_mean", "random_adapter_mean", "base_mean", "below_bar"} <= set(text)
    assert "missing" in out["zoos"]["image"]
