"""Which adapters an image composition's route turns on, for requests in many wordings (no rendering).

    python -m benchmarks.fusion_image_route [--gate DIR] [--out FILE]

For every request: the adapters it asks for plus 6 other single adapters of the image zoo loaded
as distractors (drawn with ``random.Random(request)``), routed by the calibrated gate
(``fusion/checkpoints/zoo-image``) as ``compose`` routes them: an adapter counts as on at weight
≥ 0.5. Per request set: **all asked on** (every adapter the request asks for on), **distractors
off**, and for content-only prompts (a palette and a texture loaded, nothing of either asked) the
rate at which both stay on (the user chose them).

Sets: ``val`` = the zoo's held-out paraphrases of training combos (asking for their palette and
texture) and of the single adapters (neither the route map nor the weight encoder's query head
saw them); ``heldout`` = the held-out combos' paraphrases; ``voices`` = ``benchmarks/compose_voices.json``,
written by a helper from the adapters' one-line descriptions only, never looking at the zoo's
texts (pairs in four voices, singles, shape + palette + texture triples, content-only prompts).

The route's relevance is the gate's description score plus ``head_scale`` × (c − ``head_offset``),
c the weights signal of the family's query head (``fusion.compose.head_scores``). The grid below
picks the two on ``val`` only (mean of all-asked-on and distractors-off; the smaller scale on a
tie) and reports every set with the chosen pair and with the head off; the trained gate's config
carries the chosen pair (``benchmarks.fusion_train.HEAD_ROUTE``).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
VOICES = REPO / "benchmarks" / "compose_voices.json"
SCALES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
THRESHOLDS = tuple(round(0.2 + 0.02 * i, 2) for i in range(41))  # where relevance b + scale × (c − offset) is half on
PALETTES = ("grayscale", "sepia", "redscale", "neon", "pastel", "night", "thermal", "cyanotype", "matrix", "duotone")
TEXTURES = ("hstripes", "vstripes", "diagonal", "dots", "grid", "checker", "noise", "waves")


def request_sets(tasks: dict[str, Any]) -> dict[str, list[tuple[str, list[str]]]]:
    """set → [(request, adapters it asks for)] (content-only prompts ask for none)."""
    sets: dict[str, list[tuple[str, list[str]]]] = {"val_combos": [], "val_singles": [], "heldout_combos": []}
    for tid, t in tasks.items():
        held = [p["text"] for p in t["paraphrases"] if p["split"] == "heldout"]
        if t["family"] == "combo":
            want = [t["params"]["palette"], t["params"]["texture"]]
            sets["val_combos" if t["split"] == "train" else "heldout_combos"] += [(q, want) for q in held]
        elif t["family"] in ("palette", "texture", "shape"):
            sets["val_singles"] += [(q, [tid]) for q in held]
    voices = json.loads(VOICES.read_text())
    sets["voices_pairs"] = [(e["text"], [e["palette"], e["texture"]]) for e in voices["pairs"]]
    sets["voices_singles"] = [(e["text"], [e["adapter"]]) for e in voices["singles"]]
    sets["voices_triples"] = [(e["text"], [e["shape"], e["palette"], e["texture"]]) for e in voices["triples"]]
    sets["voices_content"] = [(q, []) for q in voices["content_only"]]
    return sets


def loaded(request: str, asked: list[str], singles: list[str]) -> list[str]:
    rng = random.Random(request)
    if asked:
        return asked + rng.sample([s for s in singles if s not in asked], 6)
    palettes = [s for s in singles if s in PALETTES]
    return [rng.choice(palettes), rng.choice([s for s in singles if s in TEXTURES])]


def signals(gate: Any, zoo_tasks: dict[str, Any], adapters: dict[str, Any],
            sets: dict[str, list[tuple[str, list[str]]]]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """request → description score, weights signal and named flag of every single adapter."""
    from encoders.weight.embedder import WeightEmbedder
    from fusion.compose import head_scores, route_scores
    from fusion.gate.calibrated import names_in

    singles = list(adapters)
    descs = [zoo_tasks[s]["canonical"] for s in singles]
    emb = WeightEmbedder()
    out: dict[str, dict[str, Any]] = {}
    for rows in sets.values():
        for q, _ in rows:
            if q in out:
                continue
            g = route_scores(gate, q, descs)
            h = head_scores(q, list(adapters.values()), weight_embedder=emb)
            if h is None:
                raise SystemExit("the image zoo's weight encoder has no query head")
            out[q] = {"gate": {a: round(x, 4) for a, x in zip(singles, g.tolist(), strict=True)},
                      "head": {a: round(x, 4) for a, x in zip(singles, h.tolist(), strict=True)},
                      "named": [a for a, n in zip(singles, names_in(q, singles), strict=True) if n]}  # fmt: skip
    return out


def measure(gate: Any, rows: list[tuple[str, list[str]]], sig: dict[str, dict[str, Any]], singles: list[str],
            scale: float, offset: float) -> dict[str, float]:  # fmt: skip
    """The route's rates on one set with the weights signal at ``scale`` × (c − ``offset``)."""
    asked_on = off = n_off = kept = 0
    for q, asked in rows:
        ids = loaded(q, asked, singles)
        s = torch.tensor([sig[q]["gate"][a] + scale * (sig[q]["head"][a] - offset) for a in ids])
        on = {
            a for a, w in zip(ids, gate.route(s, [a in sig[q]["named"] for a in ids]).tolist(), strict=True) if w >= 0.5
        }
        if not asked:
            kept += on == set(ids)
            continue
        asked_on += set(asked) <= on
        others = [a for a in ids if a not in asked]
        off += sum(a not in on for a in others)
        n_off += len(others)
    n = len(rows)
    if rows and not rows[0][1]:
        return {"n": n, "all_kept_on": kept / n}
    return {"n": n, "all_asked_on": asked_on / n, "distractors_off": off / max(n_off, 1)}


def choose(
    gate: Any, sets: dict[str, Any], sig: dict[str, Any], singles: list[str]
) -> tuple[dict[str, Any], list[Any]]:
    bias = float(gate.bias.detach())
    grid = []
    val = sets["val_combos"] + sets["val_singles"]
    for scale in SCALES:
        for th in THRESHOLDS if scale > 0 else (bias,):
            offset = (th - bias) / scale if scale > 0 else 0.0
            m = measure(gate, val, sig, singles, scale, offset)
            grid.append({"scale": scale, "threshold": th, "offset": round(offset, 4), **m,
                         "objective": (m["all_asked_on"] + m["distractors_off"]) / 2})  # fmt: skip
    best = max(grid, key=lambda g: (round(g["objective"], 6), -g["scale"]))
    return best, grid


def main(argv: list[str] | None = None) -> int:
    from fusion.gate import load_gate

    ap = argparse.ArgumentParser(prog="benchmarks.fusion_image_route", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--gate", type=Path, default=REPO / "fusion" / "checkpoints" / "zoo-image")
    ap.add_argument("--out", type=Path, default=RESULTS / "fusion_image_route.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    from benchmarks.fusion import IMAGE_ZOO
    from registry.formats import read_adapter

    manifest = json.loads((IMAGE_ZOO / "manifest.json").read_text())
    tasks = {t["id"]: t for t in manifest["tasks"]}
    singles = [t for t in tasks if tasks[t]["family"] in ("palette", "texture", "shape")]
    adapters = {s: read_adapter(IMAGE_ZOO / tasks[s]["adapters"][0]["path"] / "pytorch_lora_weights.safetensors")
                for s in singles}  # fmt: skip
    gate = load_gate(args.gate, kind="image", family="zoo-image")
    sets = request_sets(tasks)
    sig = signals(gate, tasks, adapters, sets)
    best, grid = choose(gate, sets, sig, singles)
    shipped = {"scale": gate.config.head_scale, "offset": gate.config.head_offset}
    rows = {
        "head off": (0.0, 0.0),
        "chosen on val": (best["scale"], best["offset"]),
        "gate config": tuple(shipped.values()),
    }
    table = {name: {st: measure(gate, r, sig, singles, *p) for st, r in sets.items()} for name, p in rows.items()}
    out = {"gate": str(args.gate.relative_to(REPO)) if args.gate.is_relative_to(REPO) else str(args.gate),
           "bias": float(gate.bias.detach()), "chosen": best, "gate_config": shipped, "table": table, "grid": grid,
           "signals": sig, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    args.out.write_text(json.dumps(out, separators=(",", ":")) + "\n")  # compact: a few hundred requests' signals
    lines = ["| route | " + " | ".join(f"{st} (n={m['n']})" for st, m in table["head off"].items()) + " |",
             "|---" * (len(sets) + 1) + "|"]  # fmt: skip
    for name, per in table.items():
        cells = [f"{m['all_asked_on']:.2f} / {m['distractors_off']:.2f}" if "distractors_off" in m
                 else f"{m['all_kept_on']:.2f} kept" for m in per.values()]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    args.out.with_suffix(".md").write_text(
        "All asked on / distractors off (content-only prompts: both chosen adapters kept on), "
        f"`python -m benchmarks.fusion_image_route`; chosen on val: {json.dumps({k: best[k] for k in ('scale', 'threshold', 'offset')})}\n\n"
        + "\n".join(lines) + "\n")  # fmt: skip
    print("\n".join(lines))
    print("chosen:", {k: best[k] for k in ("scale", "threshold", "offset", "objective")})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
