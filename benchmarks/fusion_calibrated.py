"""The calibrated gate (``fusion.gate.calibrated``) against linear on the image zoo.

    python -m benchmarks.fusion_calibrated val      [--images N]   # trains with --hold-val, validation combos
    python -m benchmarks.fusion_calibrated heldout  [--images N]   # the committed gate, held-out combos, once
    python -m benchmarks.fusion_calibrated voices   [--images N]   # held-out pairs asked in blind voices
    python -m benchmarks.fusion_calibrated sweep    [--images N]   # k = 2, 4, 8 loaded, every held-out combo

Protocol of ``benchmarks.fusion`` (the zoo's evaluation prompts and seeds, DDIM 10 steps, guidance 4,
judged by the zoo's classifier). Per combo, the palette adapter and the texture adapter composed by:
``linear`` (the plain sum, = merge cat), ``calibrated`` (the gate, routed by the combo's first
held-out paraphrase as the suite's gate rows are), ``calibrated_chosen`` (the gate with both
adapters on: what ``compose --adapters P T`` with a content-only prompt does) and, held-out only,
the combo's own adapter (``oracle``). ``heldout`` also runs shape + palette + texture triples (the
shape adapters are not in the gate's library: they are installed as they are) and k = 2, 4, 8
adapters loaded (seeded random distractors), as ``benchmarks.fusion`` does.
``voices``: every request of ``benchmarks/compose_voices.json`` that asks for a held-out combo's palette
and texture (written blind, in other words than the zoo's), the committed gate routed by it as shipped
(``calibrated``: descriptions and the query head's weights signal) and by its descriptions alone
(``calibrated_descriptions``), with ``calibrated_chosen`` (both on) and linear once per combo.
Results → ``benchmarks/results/fusion_calibrated_<split>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SHAPES = ["star", "heart", "crescent", "arrow", "hourglass", "house"]


def _images(zoo: Any, ids: list[str], method: str, prompts: list[str], seeds: list[int], request: str,
            gate_dir: Path) -> torch.Tensor:  # fmt: skip
    from benchmarks.fusion import GUIDANCE, STEPS
    from fusion.compose import compose_images

    ads = [zoo.adapter(i) for i in ids]
    kw: dict[str, Any] = {"steps": STEPS, "guidance": GUIDANCE, "seeds": seeds, "names": ids}
    if method in ("linear", "oracle"):  # the oracle: ids is the combo's own adapter alone
        return compose_images(zoo.pipe, ads, prompts, strategy="linear", **kw).tensor  # type: ignore[return-value]
    if method == "calibrated_descriptions":  # the route without the weights signal
        from fusion.compose import route_scores
        from fusion.gate import load_gate

        gate = load_gate(gate_dir, kind="image", family="zoo-image")
        scores = route_scores(gate, request, [a.description or "" for a in ads])
    else:
        scores = torch.zeros(len(ids)) if method == "calibrated_chosen" else None
    res = compose_images(zoo.pipe, ads, prompts, strategy="gate", request=request, gate_dir=gate_dir, scores=scores,
                         **kw)  # fmt: skip
    return res.tensor  # type: ignore[return-value]


def run_voices(n_images: int, gate_dir: Path, log: Any) -> dict[str, Any]:
    from benchmarks.fusion import ImageZoo, _avg, heldout_combos
    from benchmarks.fusion_image_route import VOICES

    zoo = ImageZoo()
    pairs = {(zoo.tasks[c]["params"]["palette"], zoo.tasks[c]["params"]["texture"]): c
             for c in heldout_combos(zoo, "heldout")}  # fmt: skip
    asked = [e for e in json.loads(VOICES.read_text())["pairs"] if (e["palette"], e["texture"]) in pairs]
    prompts, seeds, scenes = zoo.scenes(n_images)
    per: dict[str, list[dict[str, float]]] = {m: [] for m in ("calibrated", "calibrated_descriptions")}
    once: dict[str, list[dict[str, float]]] = {m: [] for m in ("linear", "calibrated_chosen")}
    rows = []
    for e in asked:
        p, x = e["palette"], e["texture"]
        want = {"palette": p, "texture": x}
        if (p, x) not in {(r["palette"], r["texture"]) for r in rows}:
            for m in once:
                once[m].append(
                    zoo.judge_rows(_images(zoo, [p, x], m, prompts, seeds, e["text"], gate_dir), scenes, want)
                )
        for m in per:
            per[m].append(zoo.judge_rows(_images(zoo, [p, x], m, prompts, seeds, e["text"], gate_dir), scenes, want))
        rows.append({"palette": p, "texture": x, "text": e["text"], **{m: per[m][-1]["all"] for m in per}})
        log(f"{p}+{x}: " + ", ".join(f"{m} {per[m][-1]['all']:.2f}" for m in per) + f" | {e['text'][:70]}")
    return {"split": "voices", "requests": len(asked), "combos": len(once["linear"]), "n_images": n_images,
            "methods": {m: _avg(v) for m, v in {**per, **once}.items()}, "per_request": rows}  # fmt: skip


def run(split: str, n_images: int, gate_dir: Path, log: Any) -> dict[str, Any]:
    from benchmarks.fusion import ImageZoo, _avg, heldout_combos
    from benchmarks.fusion_train import validation_combos

    zoo = ImageZoo()
    combos = validation_combos(zoo) if split == "val" else heldout_combos(zoo, "heldout")
    prompts, seeds, scenes = zoo.scenes(n_images)
    methods = ["linear", "calibrated", "calibrated_chosen"] + (["oracle"] if split == "heldout" else [])
    per: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    for cid in combos:
        p, x = zoo.tasks[cid]["params"]["palette"], zoo.tasks[cid]["params"]["texture"]
        req = zoo.requests(cid, 1)[0]
        for m in methods:
            img = _images(zoo, [cid] if m == "oracle" else [p, x], m, prompts, seeds, req, gate_dir)
            per[m].append(zoo.judge_rows(img, scenes, {"palette": p, "texture": x}))
        log(f"{cid}: " + ", ".join(f"{m} {per[m][-1]['all']:.2f}/{per[m][-1]['content_kept']:.2f}" for m in methods))
    out: dict[str, Any] = {"split": split, "combos": combos, "n_images": n_images,
                           "methods": {m: _avg(v) for m, v in per.items()}, "per_combo": per}  # fmt: skip
    if split != "heldout":
        return out
    triples: dict[str, list[dict[str, float]]] = {m: [] for m in ("linear", "calibrated", "calibrated_chosen")}
    for i, cid in enumerate(combos):
        s = SHAPES[i % len(SHAPES)]
        p, x = zoo.tasks[cid]["params"]["palette"], zoo.tasks[cid]["params"]["texture"]
        tp, ts, tsc = zoo.scenes(n_images, shape=s)
        req = f"{zoo.requests(s, 1)[0]} {zoo.requests(cid, 1)[0]}"
        for m in triples:
            img = _images(zoo, [s, p, x], m, tp, ts, req, gate_dir)
            triples[m].append(zoo.judge_rows(img, tsc, {"shape": s, "palette": p, "texture": x}))
        log(f"triple {s}+{cid}: " + ", ".join(f"{m} {v[-1]['all']:.2f}" for m, v in triples.items()))
    out["triples"] = {m: _avg(v) for m, v in triples.items()}
    out["sweep"] = sweep(zoo, combos[:4], n_images, gate_dir, log)
    return out


def sweep(zoo: Any, combos: list[str], n_images: int, gate_dir: Path, log: Any) -> dict[str, Any]:
    """k = 2, 4, 8 adapters loaded: each combo's palette and texture plus seeded random distractors."""
    from benchmarks.fusion import _avg

    prompts, seeds, scenes = zoo.scenes(n_images)
    singles = [t["id"] for t in zoo.manifest["tasks"] if t["family"] in ("palette", "texture", "shape")]
    rows: dict[str, list[dict[str, float]]] = {f"{m}@{k}": [] for k in (2, 4, 8) for m in ("linear", "calibrated")}
    for cid in combos:
        p, x = zoo.tasks[cid]["params"]["palette"], zoo.tasks[cid]["params"]["texture"]
        distract = random.Random(cid).sample([s for s in singles if s not in (p, x)], 6)
        req = zoo.requests(cid, 1)[0]
        for k in (2, 4, 8):
            for m in ("linear", "calibrated"):
                img = _images(zoo, [p, x, *distract[: k - 2]], m, prompts, seeds, req, gate_dir)
                rows[f"{m}@{k}"].append(zoo.judge_rows(img, scenes, {"palette": p, "texture": x}))
        log(f"sweep {cid}: " + ", ".join(f"{key} {v[-1]['requested_rate']:.2f}" for key, v in rows.items()))
    return {key: _avg(v) for key, v in rows.items()}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.fusion_train import CHECKPOINTS, train_calibrated_gate

    ap = argparse.ArgumentParser(prog="benchmarks.fusion_calibrated", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("split", choices=("val", "heldout", "voices", "sweep"))
    ap.add_argument("--images", type=int, default=8, help="images per combo (the zoo's evaluation prompts, seeds)")
    ap.add_argument("--gate", type=Path, default=None, help="gate folder (val: trained here; heldout: committed)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    gate_dir = args.gate
    training = None
    if args.split == "val" and gate_dir is None:
        gate_dir = Path(tempfile.mkdtemp(prefix="calibrated-val-"))
        training = train_calibrated_gate(out=gate_dir, hold_val=True)
    gate_dir = gate_dir or CHECKPOINTS / "zoo-image"
    log = lambda s: print(s, flush=True)  # noqa: E731
    if args.split == "sweep":  # every held-out combo, not only the first four (all grayscale)
        from benchmarks.fusion import ImageZoo, heldout_combos

        zoo = ImageZoo()
        combos = heldout_combos(zoo, "heldout")
        out = {"split": "sweep", "combos": combos, "n_images": args.images,
               "sweep": sweep(zoo, combos, args.images, gate_dir, log)}  # fmt: skip
    elif args.split == "voices":
        out = run_voices(args.images, gate_dir, log)
    else:
        out = run(args.split, args.images, gate_dir, log)
    out["gate"] = str(gate_dir.relative_to(REPO)) if gate_dir.is_relative_to(REPO) else "trained here (--hold-val)"
    out["training"] = training or json.loads((gate_dir / "metrics.json").read_text())
    out["seconds"] = round(time.perf_counter() - t0, 1)
    path = args.out or RESULTS / f"fusion_calibrated_{args.split}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out.get(k) for k in ("methods", "triples", "sweep")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
