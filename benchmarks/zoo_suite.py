"""Suite ``zoo``: re-measure the committed zoos' quality against their baselines.

Text zoo: every task is decoded three ways in stacked, batched passes over the committed
PEFT adapters: through its own adapter (oracle), through the adapter of another task
(random adapter), and through the bare base (base). Exact match on the zoo's held-out
strings; per-family table and the adapters below the bar. Image zoo
(``benchmarks.zoo.image.suite``): style hit and content kept of oracle, random adapter and base
per family, and a grid of base vs adapter samples; it reports itself missing until it is built.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

ZOO = Path(__file__).resolve().parent / "zoo"


def text_zoo_quality(zoo: Path, n_eval: int | None = None, seed: int = 0) -> dict[str, Any]:
    import torch

    from benchmarks.zoo.text.evaluate import evaluate_tasks
    from benchmarks.zoo.text.lora import LoraShape, load_stacked, remove
    from benchmarks.zoo.text.model import load_base
    from benchmarks.zoo.text.tasks import all_tasks

    manifest = json.loads((zoo / "manifest.json").read_text())
    cfg = manifest["config"]
    n = n_eval or cfg["n_eval"]
    by_id = {t.id: t for t in all_tasks(cfg["seed"])}
    records = manifest["tasks"]
    tasks = [by_id[r["id"]] for r in records]
    folders = [zoo / r["adapters"][0]["path"] for r in records]  # seed 0 of each task
    shape = LoraShape(r=cfg["lora"]["r"], alpha=cfg["lora"]["alpha"], targets=tuple(cfg["lora"]["targets"]))
    model, tok = load_base(zoo / "base")
    rng = random.Random(f"random-adapter-{seed}")
    others = [rng.choice([j for j in range(len(records)) if records[j]["family"] != r["family"]]) for r in records]
    timings: dict[str, float] = {}
    with torch.no_grad():
        t0 = time.perf_counter()
        base = evaluate_tasks(model, tok, tasks, n=n, seed=cfg["seed"])
        timings["base_s"] = time.perf_counter() - t0
        routing, wrapped = load_stacked(model, folders, shape)
        t0 = time.perf_counter()
        oracle = evaluate_tasks(model, tok, tasks, n=n, routing=routing, adapters=list(range(len(tasks))),
                                seed=cfg["seed"])  # fmt: skip
        timings["oracle_s"] = time.perf_counter() - t0
        rand = evaluate_tasks(model, tok, tasks, n=n, routing=routing, adapters=others, seed=cfg["seed"])
        remove(model, wrapped)
    rows = []
    for fam in dict.fromkeys(r["family"] for r in records):
        idx = [i for i, r in enumerate(records) if r["family"] == fam]
        rows.append({
            "family": fam, "tasks": len(idx), "heldout": sum(records[i]["split"] == "heldout" for i in idx),
            "oracle_mean": sum(oracle[i] for i in idx) / len(idx), "oracle_min": min(oracle[i] for i in idx),
            "random_adapter_mean": sum(rand[i] for i in idx) / len(idx),
            "base_mean": sum(base[i] for i in idx) / len(idx), "base_max": max(base[i] for i in idx),
        })  # fmt: skip
    bar = 0.9
    below = [(records[i]["id"], oracle[i]) for i in range(len(records)) if oracle[i] < bar]
    return {
        "zoo": "text",
        "n_eval": n,
        "tasks": len(records),
        "adapters_evaluated": len(folders),
        "oracle_mean": sum(oracle) / len(oracle),
        "random_adapter_mean": sum(rand) / len(rand),
        "base_mean": sum(base) / len(base),
        "base_max": max(base),
        "oracle_bar": bar,
        "below_bar": below,
        "matches_manifest": sum(abs(o - r["oracle_accuracy"]) < 1e-9 for o, r in zip(oracle, records, strict=True)),
        "timings": timings,
        "rows": rows,
    }


def suite_zoo(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    out: dict[str, Any] = {"zoos": {}}
    text_dir = Path(getattr(args, "zoo_dir", None) or ZOO / "text")
    if (text_dir / "manifest.json").is_file():
        out["zoos"]["text"] = text_zoo_quality(text_dir, n_eval=50 if quick else None)
        out["rows"] = [{"zoo": "text", **r} for r in out["zoos"]["text"].pop("rows")]
    else:
        out["zoos"]["text"] = {"missing": f"{text_dir} has no manifest.json: python -m benchmarks.zoo build text"}
    image_dir = Path(getattr(args, "image_zoo_dir", None) or ZOO / "image")
    if (image_dir / "manifest.json").is_file():
        from benchmarks.zoo.image.suite import image_zoo_quality

        results = getattr(args, "out", None)
        grid = Path(results) / "zoo_image_samples.png" if results else None
        out["zoos"]["image"] = image_zoo_quality(image_dir, n_eval=8 if quick else None, grid=grid)
        out["rows"] = [*out.get("rows", []), *({"zoo": "image", **r} for r in out["zoos"]["image"].pop("rows"))]
    else:
        out["zoos"]["image"] = {"missing": "the image zoo is not built yet (python -m benchmarks.zoo build image)"}
    return out
