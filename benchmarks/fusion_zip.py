"""The ``zip`` merge (ZipLoRA-style learned coefficients) against linear on the image zoo.

    python -m benchmarks.fusion_zip val      [--combos N] [--images N] [--steps N]   # training combos
    python -m benchmarks.fusion_zip heldout  [--combos N] [--images N] [--steps N]   # held-out combos, once

For each palette × texture combo, the combo's palette adapter and texture adapter are merged by
``zip``: coefficients fitted so that the merged UNet reproduces each adapter's own noise
prediction on that adapter's own procedural images (the palette's images without texture, the
texture's without palette, content captions as prompts; no combo data), plus the |cos| penalty.
Images: the zoo's evaluation prompts and seeds, DDIM 10 steps, guidance 4 (``benchmarks.fusion``'s
protocol), judged by the zoo's classifier; linear (the plain sum, = merge cat), zip, linear at
each adapter's mean zip coefficient (a control: does the per-channel structure matter?) and, on
held-out combos, the combo's own adapter (oracle) on the same prompts and seeds.
Results → benchmarks/results/fusion_zip_<split>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def zoo_sampler(zoo: Any, palette: str | None, texture: str | None) -> Any:
    """The adapter's own data: procedural scenes in its palette or texture, content captions."""
    import numpy as np

    from benchmarks.zoo.image.captions import TEMPLATES, caption
    from benchmarks.zoo.image.shapes import random_scenes, render, to_tensor_range

    def sample(n: int, gen: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        r = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        scenes = random_scenes(r, n, texture=texture, palette=palette)
        x = torch.from_numpy(to_tensor_range(render(scenes, r)))  # (n, 3, 32, 32) in [-1, 1]
        with torch.no_grad():
            lat = zoo.pipe.vae.encode(x).latents * zoo.pipe.vae.config.scaling_factor  # (n, 12, 16, 16)
        return lat, [caption(s, int(r.integers(0, len(TEMPLATES)))) for s in scenes]

    return sample


def run(split: str, n_combos: int, n_images: int, cfg: Any, log: Any) -> dict[str, Any]:
    from benchmarks.fusion import GUIDANCE, STEPS, ImageZoo, _avg, heldout_combos
    from fusion.compose import compose_images
    from fusion.merge.ziplora import zip_merge

    zoo = ImageZoo()
    ids = heldout_combos(zoo, split)
    stride = max(1, len(ids) // n_combos)
    combos = ids[::stride][:n_combos]  # spread over the manifest order
    prompts, seeds, scenes = zoo.scenes(n_images)
    methods = ["linear", "zip", "linear_at_zip_mean"] + (["oracle"] if split == "heldout" else [])
    per: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    learned: dict[str, Any] = {}
    kw: dict[str, Any] = {"steps": STEPS, "guidance": GUIDANCE, "seeds": seeds}
    for cid in combos:
        p, x = zoo.tasks[cid]["params"]["palette"], zoo.tasks[cid]["params"]["texture"]
        want = {"palette": p, "texture": x}
        t0 = time.perf_counter()
        samplers = [zoo_sampler(zoo, p, None), zoo_sampler(zoo, None, x)]
        res = zip_merge(zoo.pipe, [zoo.adapter(p), zoo.adapter(x)], samplers, None, cfg)
        learned[cid] = res.info["zip"]
        imgs = {
            "linear": compose_images(zoo.pipe, [zoo.adapter(p), zoo.adapter(x)], prompts, strategy="linear", **kw),
            "zip": compose_images(zoo.pipe, [res.adapter], prompts, strategy="linear", **kw),
            # control: the plain sum at each adapter's mean zip coefficient (is the per-channel structure needed?)
            "linear_at_zip_mean": compose_images(zoo.pipe, [zoo.adapter(p), zoo.adapter(x)], prompts,
                                                 strategy="linear", weights=res.info["zip"]["coefficient_mean"], **kw),
        }  # fmt: skip
        if "oracle" in per:
            imgs["oracle"] = compose_images(zoo.pipe, [zoo.adapter(cid)], prompts, strategy="linear", **kw)
        for m, r in imgs.items():
            per[m].append(zoo.judge_rows(r.tensor, scenes, want))  # type: ignore[arg-type]
        z = res.info["zip"]
        log(f"{cid}: " + ", ".join(f"{m} all {per[m][-1]['all']:.2f} content {per[m][-1]['content_kept']:.2f}"
                                   for m in per) + f"; zip mse {z['mse_first']:.4f}→{z['mse_last']:.4f} "
            f"cos {z['cos_first']:.3f}→{z['cos_last']:.3f} m mean {z['coefficient_mean']} "
            f"({time.perf_counter() - t0:.0f}s)")  # fmt: skip
    return {
        "split": split, "combos": combos, "n_images": n_images, "ddim_steps": STEPS, "guidance": GUIDANCE,
        "zip_config": learned[combos[0]]["config"] if combos else None,
        "methods": {m: _avg(v) for m, v in per.items()}, "per_combo": {m: v for m, v in per.items()},
        "zip_training": learned,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from fusion.merge.ziplora import ZipConfig

    ap = argparse.ArgumentParser(prog="benchmarks.fusion_zip", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("split", choices=("val", "heldout"))
    ap.add_argument("--combos", type=int, default=None, help="combos measured (default: 10 val, 12 held-out)")
    ap.add_argument("--images", type=int, default=8, help="images per combo (the zoo's evaluation prompts, seeds)")
    ap.add_argument("--steps", type=int, default=ZipConfig.steps)
    ap.add_argument("--batch", type=int, default=ZipConfig.batch)
    ap.add_argument("--lr", type=float, default=ZipConfig.lr)
    ap.add_argument("--cos-weight", type=float, default=ZipConfig.cos_weight)
    ap.add_argument("--axis", choices=("out", "in"), default=ZipConfig.axis)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = ZipConfig(steps=args.steps, batch=args.batch, lr=args.lr, cos_weight=args.cos_weight, axis=args.axis)
    split = "train" if args.split == "val" else "heldout"
    n = args.combos or (10 if split == "train" else 12)
    t0 = time.perf_counter()
    out = run(split, n, args.images, cfg, lambda s: print(s, flush=True))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    path = args.out or RESULTS / f"fusion_zip_{args.split}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["methods"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
