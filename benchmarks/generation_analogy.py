"""How the ``analogy`` generator's knobs were chosen, on training tasks only (held-out tasks unseen).

    python -m benchmarks.generation_analogy [--n 12] [--out benchmarks/results/generation_analogy.json]

Leave-one-out: a training task's own expert is left out of the library (``triples(exclude=…)``)
and the task is asked for by its canonical description, so the library holds its parts but not
the task, as for a held-out task. Rows: the nearest remaining expert, and the average of the
best 1, 2, 4, 8 triples, judged by the zoos' own judges at the sum's rank. The margin: the gain
of the best triple's cosine over the nearest expert's, for requests an expert does (the
validation queries of ``generation_queries.json``, expert present) and for left-out tasks; the
threshold with the best balanced accuracy between the two.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.generation_data import QUERIES, manifest

REPO = Path(__file__).resolve().parents[1]
COUNTS = (1, 2, 4, 8)


def _mix(gen: Any, chosen: list[tuple[float, tuple[int, int, int]]]) -> Any:
    from generators.canonical import recanonical, to_adapter

    facs, _ = gen.blend(chosen)
    return to_adapter(recanonical(facs, gen.output_rank(facs)), gen.layout, gen.template, "loo")


def _balanced(pos: list[float], neg: list[float]) -> tuple[float, float]:
    """Threshold t (say 'analogy' when gap ≥ t) with the best balanced accuracy; and that accuracy."""
    best = (0.0, -1.0)
    for t in sorted(set(pos + neg)):
        acc = 0.5 * (sum(g >= t for g in pos) / len(pos) + sum(g < t for g in neg) / len(neg))
        if acc > best[1]:
            best = (t, acc)
    return best


def run_zoo(zoo: str, n: int, seed: int = 0) -> dict[str, Any]:
    from benchmarks.generation_judges import ImageJudge, TextJudge
    from generators import BUNDLED, load_generator
    from generators.canonical import to_adapter

    fam = f"zoo-{zoo}"
    gen = load_generator(BUNDLED / fam / "analogy")
    lib = gen.library
    man = {t["id"]: t for t in manifest(zoo)["tasks"]}
    kind = "combo" if zoo == "image" else "compose"
    pool = [t for t in lib.names if man.get(t, {}).get("split") == "train" and man[t]["family"] == kind]
    tasks = random.Random(f"analogy-loo-{zoo}-{seed}").sample(pool, min(n, len(pool)))
    rows: list[tuple[str, str, Any]] = []
    loo_gaps, picks = [], {}
    for t in tasks:
        ex = [lib.names.index(t)]
        found, near, i = gen.triples(gen.embed([man[t]["canonical"]])[0], exclude=ex)
        loo_gaps.append(found[0][0] - near)
        rows.append(("nearest (left out)", t, to_adapter(lib.expert(i), gen.layout, gen.template, "loo")))
        for k in COUNTS:
            rows.append((f"analogy x{k}", t, _mix(gen, found[:k])))
        picks[t] = [[lib.names[j] for j in trip] for _, trip in found[:4]]
    val = [r["query"] for r in json.loads(QUERIES.read_text())[zoo] if r["split"] == "validation"]
    in_gaps = []
    for q in val:
        found, near, _ = gen.triples(gen.embed([q])[0])
        in_gaps.append(found[0][0] - near)
    t0 = time.perf_counter()
    if zoo == "image":
        res = ImageJudge(n=6).scores([(t, a) for _, t, a in rows])
        metric = [(r["style_hit"], r["content_kept"]) for r in res]
    else:
        acc = TextJudge(n=20).accuracy([(t, a) for _, t, a in rows])
        metric = [(v, None) for v in acc]
    table: dict[str, dict[str, Any]] = {}
    for (lab, _, _), (m, c) in zip(rows, metric, strict=True):
        e = table.setdefault(lab, {"metric": [], "content_kept": []})
        e["metric"].append(m)
        if c is not None:
            e["content_kept"].append(c)
    summary = {lab: {"metric": round(statistics.fmean(v["metric"]), 4),
                     "content_kept": round(statistics.fmean(v["content_kept"]), 4) if v["content_kept"] else None}
               for lab, v in table.items()}  # fmt: skip
    thr, bal = _balanced(loo_gaps, in_gaps)
    return {
        "tasks": tasks,
        "methods": summary,
        "triples": picks,
        "gap_left_out": {"median": round(statistics.median(loo_gaps), 4), "min": round(min(loo_gaps), 4)},
        "gap_in_library": {"median": round(statistics.median(in_gaps), 4), "max": round(max(in_gaps), 4)},
        "balanced_threshold": round(thr, 4),
        "balanced_accuracy": round(bal, 4),
        "shipped_margin": gen.config.margin,
        "judge_seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.generation_analogy", description=__doc__)
    p.add_argument("--n", type=int, default=12, help="left-out training tasks per zoo")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "generation_analogy.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = {z: run_zoo(z, args.n) for z in ("image", "text")}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    for z, r in out.items():
        print(z, json.dumps(r["methods"]), "margin", r["balanced_threshold"], r["balanced_accuracy"])
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
