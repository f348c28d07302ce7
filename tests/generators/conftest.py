"""Fixtures for generator tests: a few real zoo adapters as training items, the text encoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TEXT_ZOO = REPO / "benchmarks" / "zoo" / "text"
IMAGE_ZOO = REPO / "benchmarks" / "zoo" / "image"
TEXT_IDS = ["caesar_1", "caesar_2", "reverse", "upper", "append_abc", "delete_a"]
IMAGE_IDS = ["grayscale", "sepia", "dots", "hstripes"]

# Tiny training budgets so each method trains in seconds.
FAST = {"steps": 20, "batch_size": 4, "width": 32, "contexts": 1}


@pytest.fixture(scope="session")
def text_encoder() -> Any:
    from encoders.text import get_text_encoder

    return get_text_encoder()


def zoo_items(zoo: Path, ids: list[str], weights: str = "") -> list[Any]:
    from generators import TrainItem
    from registry.formats import read_adapter

    manifest = {t["id"]: t for t in json.loads((zoo / "manifest.json").read_text())["tasks"]}
    items = []
    for tid in ids:
        rec = manifest[tid]
        texts = [rec["canonical"]] + [p["text"] for p in rec["paraphrases"] if p["split"] == "train"]
        ad = read_adapter(zoo / rec["adapters"][0]["path"] / weights)
        items.append(TrainItem(tid, ad, texts, tid))
    return items


@pytest.fixture(scope="session")
def text_items() -> list[Any]:
    return zoo_items(TEXT_ZOO, TEXT_IDS)


@pytest.fixture(scope="session")
def image_items() -> list[Any]:
    return zoo_items(IMAGE_ZOO, IMAGE_IDS, "pytorch_lora_weights.safetensors")
