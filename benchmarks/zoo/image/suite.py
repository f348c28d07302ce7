"""Re-measure the committed image zoo (suite ``zoo``): oracle, random adapter and base, per family.

All adapters (seed 0 of each) are stacked on the base once; every prompt is generated three ways
in batched passes: through its own adapter (oracle), through an adapter of another family
(random adapter), and through the bare base. Same prompts, seeds, sampler and judge as the build.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.zoo.image.captions import AdapterSpec


def spec_of(record: dict[str, Any]) -> AdapterSpec:
    return AdapterSpec(record["id"], record["family"], split=record["split"], **record["params"])


def image_zoo_quality(zoo: Path, n_eval: int | None = None, grid: Path | None = None, seed: int = 0) -> dict[str, Any]:
    import torch

    from benchmarks.zoo.image.classifiers import load_classifier
    from benchmarks.zoo.image.evaluate import evaluate
    from benchmarks.zoo.image.lora import LoraShape, load_stacked, remove
    from benchmarks.zoo.image.model import load_base
    from benchmarks.zoo.image.report import passes_bars, sample_grid

    manifest = json.loads((zoo / "manifest.json").read_text())
    cfg = manifest["config"]
    n = n_eval or cfg["n_eval"]
    records = manifest["tasks"]
    specs = [spec_of(r) for r in records]
    kw = {"n": n, "steps": cfg["eval_steps"], "guidance": cfg["guidance"], "seed": cfg["seed"], "return_images": True}
    pipe = load_base(zoo / "base")
    judge = load_classifier(zoo / "classifiers")
    rng = random.Random(f"random-adapter-{seed}")
    others = [rng.choice([j for j in range(len(records)) if records[j]["family"] != r["family"]]) for r in records]
    timings: dict[str, float] = {}
    with torch.no_grad():
        t0 = time.perf_counter()
        base = evaluate(pipe, judge, specs, **kw)
        timings["base_s"] = time.perf_counter() - t0
        routing, wrapped = load_stacked(pipe.unet, [zoo / r["adapters"][0]["path"] for r in records],
                                        LoraShape(**cfg["lora"]))  # fmt: skip
        t0 = time.perf_counter()
        oracle = evaluate(pipe, judge, specs, routing=routing, adapters=list(range(len(specs))), **kw)
        timings["oracle_s"] = time.perf_counter() - t0
        rand = evaluate(pipe, judge, specs, routing=routing, adapters=others, **kw)
        remove(pipe.unet, wrapped)
    rows = []
    for fam in dict.fromkeys(r["family"] for r in records):
        idx = [i for i, r in enumerate(records) if r["family"] == fam]
        rows.append({
            "family": fam, "tasks": len(idx), "heldout": sum(records[i]["split"] == "heldout" for i in idx),
            "oracle_style_mean": float(np.mean([oracle[i]["style_hit"] for i in idx])),
            "oracle_style_min": min(oracle[i]["style_hit"] for i in idx),
            "content_kept_mean": float(np.mean([oracle[i]["content_kept"] for i in idx])),
            "random_adapter_style_mean": float(np.mean([rand[i]["style_hit"] for i in idx])),
            "base_style_mean": float(np.mean([base[i]["style_hit"] for i in idx])),
            "base_style_max": max(base[i]["style_hit"] for i in idx),
        })  # fmt: skip
    bars = manifest["bars"]
    below = [(r["id"], o["style_hit"], o["content_kept"]) for r, o in zip(records, oracle, strict=True)
             if not passes_bars(o, bars)]  # fmt: skip
    if grid is not None:
        to8 = lambda t: (t[:4].numpy() * 255).round().astype(np.uint8)  # noqa: E731
        sample_grid([(r["id"], to8(b["images"]), to8(o["images"])) for r, b, o in zip(records, base, oracle, strict=True)], grid)  # fmt: skip
    mean = lambda xs: float(np.mean(xs))  # noqa: E731
    same = sum(abs(o["style_hit"] - r["oracle_style_hit"]) < 1e-9 for o, r in zip(oracle, records, strict=True))
    return {
        "zoo": "image",
        "n_eval": n,
        "tasks": len(records),
        "oracle_style_mean": mean([o["style_hit"] for o in oracle]),
        "oracle_content_kept_mean": mean([o["content_kept"] for o in oracle]),
        "random_adapter_style_mean": mean([o["style_hit"] for o in rand]),
        "base_style_mean": mean([b["style_hit"] for b in base]),
        "base_style_max": max(b["style_hit"] for b in base),
        "bars": bars,
        "below_bars": below,
        "matches_manifest": same if n == cfg["n_eval"] else None,  # oracle style hits equal to the build's
        "sample_grid": str(grid) if grid is not None else None,
        "timings": timings,
        "rows": rows,
    }
