"""How the ``analogy`` generator's knobs were chosen, on training tasks only (held-out tasks unseen).

    python -m benchmarks.generation_analogy [--n 16] [--counts] [--out benchmarks/results/generation_analogy.json]

Leave-one-out: a training task's own expert is left out of the library (``triples(exclude=…)``)
and the task is asked for by its canonical description, so the library holds its parts but not
the task, as for a held-out task. Each left-out task is judged by the zoos' own judges, with
the adapter the rule under test would give it: the blend of the best 4 triples when the rule
takes a triple, else the nearest remaining expert.

The rule (``bridge`` part, always run): a triple is taken when the best triple's cosine beats
the nearest expert's by ``margin`` and its c bridges a and b (min(cos(e_a, e_c), cos(e_b, e_c))
≥ ``bridge``), either applied per triple (c chosen among bridging experts only, the blend made of
bridging triples) or on the best unfiltered triple only. Requests an expert already does must
not take one: the validation queries of ``generation_queries.json`` and, for training tasks
outside the suite's probe set (never asked by the suite), their held-out paraphrases and terse
ids, every expert present. The chosen setting: the best mean left-out hit over both zoos among
those where each source of in-library requests takes a triple at ≤ ``IN_LIBRARY_MAX`` on each zoo.

``--counts`` also reruns the first table (how many triples to blend: 1, 2, 4, 8, no gate).
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

from benchmarks.generation_data import QUERIES, _terse, manifest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
COUNTS = (1, 2, 4, 8)
BRIDGES = (None, 0.2, 0.25, 0.3, 0.35, 0.4)
MARGINS = (0.06, 0.1, 0.14, 0.18, 0.22, 0.26)
MODES = ("triple", "best")
IN_LIBRARY_MAX = 0.02
ANALOGIES = 4


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


def in_library_requests(zoo: str) -> dict[str, list[str]]:
    """Requests an expert does, none of them in the suite's unseen-paraphrase or held-out splits."""
    tasks = manifest(zoo)["tasks"]
    train_ids = [t["id"] for t in tasks if t["split"] == "train"]
    probe = set(train_ids[::4])  # the suite's probe tasks (benchmarks.generation_data.queries)
    rest = [t for t in tasks if t["split"] == "train" and t["id"] not in probe]
    return {
        "validation": [r["query"] for r in json.loads(QUERIES.read_text())[zoo] if r["split"] == "validation"],
        "paraphrase": [p["text"] for t in rest for p in t["paraphrases"] if p["split"] == "heldout"],
        "terse": [_terse(t["id"]) for t in rest],
    }


def _decide(found: list[tuple[float, tuple[int, int, int]]], near: float, margin: float) -> bool:
    return bool(found) and found[0][0] - near >= margin


class _Rule:
    """The triples of one request under every (mode, bridge), computed once."""

    def __init__(self, gen: Any, emb: torch.Tensor, exclude: list[int] | None = None) -> None:
        self.by_bridge = {b: gen.triples(emb, exclude=exclude, bridge=b) for b in BRIDGES}
        found, _, _ = self.by_bridge[None]
        self.best_bridge = gen.bridge_of(found[0][1]) if found else -1.0

    def chosen(self, mode: str, bridge: float | None, margin: float) -> list[tuple[float, tuple[int, int, int]]]:
        """The triples blended under the rule (empty: the nearest expert)."""
        if mode == "best" or bridge is None:
            found, near, _ = self.by_bridge[None]
            ok = _decide(found, near, margin) and (bridge is None or self.best_bridge >= bridge)
        else:
            found, near, _ = self.by_bridge[bridge]
            ok = _decide(found, near, margin)
        return found[:ANALOGIES] if ok else []


def _judge(zoo: str, rows: list[tuple[str, Any]]) -> list[tuple[float, float | None]]:
    from benchmarks.generation_judges import ImageJudge, TextJudge

    if zoo == "image":
        return [(r["style_hit"], r["content_kept"]) for r in ImageJudge(n=6).scores(rows)]
    return [(v, None) for v in TextJudge(n=20).accuracy(rows)]


def _sample(gen: Any, zoo: str, n: int, seed: int) -> list[str]:
    man = {t["id"]: t for t in manifest(zoo)["tasks"]}
    kind = "combo" if zoo == "image" else "compose"
    pool = [t for t in gen.library.names if man.get(t, {}).get("split") == "train" and man[t]["family"] == kind]
    return random.Random(f"analogy-loo-{zoo}-{seed}").sample(pool, min(n, len(pool)))


def run_bridge(zoo: str, n: int, seed: int = 0) -> dict[str, Any]:
    """The (mode, bridge, margin) grid: left-out hit and in-library take rate per setting."""
    from generators import BUNDLED, load_generator
    from generators.canonical import to_adapter

    gen = load_generator(BUNDLED / f"zoo-{zoo}" / "analogy")
    lib = gen.library
    man = {t["id"]: t for t in manifest(zoo)["tasks"]}
    tasks = _sample(gen, zoo, n, seed)
    rules, nearest = {}, {}
    for t in tasks:
        ex = [lib.names.index(t)]
        rules[t] = _Rule(gen, gen.embed([man[t]["canonical"]])[0], exclude=ex)
        nearest[t] = rules[t].by_bridge[None][2]
    grid = [(m, b, g) for m in MODES for b in BRIDGES for g in MARGINS if not (m == "best" and b is None)]
    # every distinct adapter a left-out task can get, judged once
    keys: dict[tuple[str, tuple[tuple[int, int, int], ...]], Any] = {}
    for t in tasks:
        keys[(t, ())] = to_adapter(lib.expert(nearest[t]), gen.layout, gen.template, "loo")
        for m, b, g in grid:
            ch = rules[t].chosen(m, b, g)
            k = (t, tuple(trip for _, trip in ch))
            if k not in keys:
                keys[k] = _mix(gen, ch)
    t0 = time.perf_counter()
    print(f"{zoo}: judging {len(keys)} adapters for {len(tasks)} left-out tasks", flush=True)
    judged = dict(zip(keys, _judge(zoo, [(k[0], a) for k, a in keys.items()]), strict=True))
    judge_s = time.perf_counter() - t0
    reqs = in_library_requests(zoo)
    in_rules = {src: [_Rule(gen, e) for e in gen.embed(qs)] for src, qs in reqs.items()}
    table = []
    for m, b, g in grid:
        hits = [judged[(t, tuple(tr for _, tr in rules[t].chosen(m, b, g)))] for t in tasks]
        take = {src: sum(bool(r.chosen(m, b, g)) for r in rs) / len(rs) for src, rs in in_rules.items()}
        allr = [r for rs in in_rules.values() for r in rs]
        row = {
            "mode": m,
            "bridge": b,
            "margin": g,
            "left_out_hit": round(statistics.fmean(h for h, _ in hits), 4),
            "left_out_taken": round(sum(bool(rules[t].chosen(m, b, g)) for t in tasks) / len(tasks), 4),
            "in_library_taken": round(sum(bool(r.chosen(m, b, g)) for r in allr) / len(allr), 4),
            "in_library_taken_by_source": {k: round(v, 4) for k, v in take.items()},
        }
        if zoo == "image":
            row["left_out_content_kept"] = round(statistics.fmean(c for _, c in hits if c is not None), 4)
        table.append(row)
    return {
        "tasks": tasks,
        "in_library_requests": {k: len(v) for k, v in reqs.items()},
        "nearest_left_out_hit": round(statistics.fmean(judged[(t, ())][0] for t in tasks), 4),
        "best_triple_bridge_left_out": {t: round(rules[t].best_bridge, 4) for t in tasks},
        "grid": table,
        "adapters_judged": len(keys),
        "judge_seconds": round(judge_s, 1),
    }


def choose(res: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The setting with the best mean left-out hit over the zoos among those where, on every zoo,
    each source of in-library requests takes a triple at ≤ IN_LIBRARY_MAX (ties: lower take
    rate, then the margin nearest 0.14)."""
    zoos = list(res)
    rows: dict[tuple[str, Any, float], list[dict[str, Any]]] = {}
    for z in zoos:
        for r in res[z]["bridge"]["grid"]:
            rows.setdefault((r["mode"], r["bridge"], r["margin"]), []).append(r)
    ok = [
        (k, v)
        for k, v in rows.items()
        if len(v) == len(zoos) and all(x <= IN_LIBRARY_MAX for r in v for x in r["in_library_taken_by_source"].values())
    ]
    if not ok:
        return {"mode": None, "reason": f"no setting keeps in-library take rate ≤ {IN_LIBRARY_MAX} on every zoo"}

    def key(kv: tuple[tuple[str, Any, float], list[dict[str, Any]]]) -> tuple[float, float, float]:
        (_, _, g), v = kv
        return (-statistics.fmean(r["left_out_hit"] for r in v),
                statistics.fmean(r["in_library_taken"] for r in v), abs(g - 0.14))  # fmt: skip

    (m, b, g), v = min(ok, key=key)
    return {"mode": m if b is not None else "none", "bridge": b, "margin": g, "left_out_hit": {z: r["left_out_hit"] for z, r in zip(zoos, v, strict=True)},
            "in_library_taken": {z: r["in_library_taken"] for z, r in zip(zoos, v, strict=True)}}  # fmt: skip


def run_counts(zoo: str, n: int, seed: int = 0) -> dict[str, Any]:
    """How many triples to blend (no gate): nearest remaining expert vs the best 1, 2, 4, 8 triples."""
    from generators import BUNDLED, load_generator
    from generators.canonical import to_adapter

    gen = load_generator(BUNDLED / f"zoo-{zoo}" / "analogy")
    lib = gen.library
    man = {t["id"]: t for t in manifest(zoo)["tasks"]}
    tasks = _sample(gen, zoo, n, seed)
    rows: list[tuple[str, str, Any]] = []
    loo_gaps, picks = [], {}
    for t in tasks:
        found, near, i = gen.triples(gen.embed([man[t]["canonical"]])[0], exclude=[lib.names.index(t)])
        loo_gaps.append(found[0][0] - near)
        rows.append(("nearest (left out)", t, to_adapter(lib.expert(i), gen.layout, gen.template, "loo")))
        for k in COUNTS:
            rows.append((f"analogy x{k}", t, _mix(gen, found[:k])))
        picks[t] = [[lib.names[j] for j in trip] for _, trip in found[:4]]
    in_gaps = []
    for q in in_library_requests(zoo)["validation"]:
        found, near, _ = gen.triples(gen.embed([q])[0])
        in_gaps.append(found[0][0] - near)
    t0 = time.perf_counter()
    metric = _judge(zoo, [(t, a) for _, t, a in rows])
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
        "judge_seconds": round(time.perf_counter() - t0, 1),
    }


def to_markdown(res: dict[str, Any]) -> str:
    lines = ["# generation_analogy: the analogy generator's rule, chosen leave-one-out on training tasks", "",
             "`python -m benchmarks.generation_analogy` (" + res.get("command_note", "") + "). Left-out hit: style hit "
             "(image) / exact match (text) of training tasks asked by their canonical description with their own "
             "expert left out (the adapter the rule gives: blend of the best 4 triples when it takes one, else the "
             "nearest remaining expert). In-library taken: share of requests an expert does (validation queries, "
             "held-out paraphrases and terse ids of non-probe training tasks) that take a triple. Held-out and "
             "unseen-paraphrase splits were not looked at.", ""]  # fmt: skip
    ch = res.get("chosen", {})
    lines += [f"Chosen: `{json.dumps(ch)}`", ""]
    for z in ("image", "text"):
        if z not in res or "bridge" not in res[z]:
            continue
        br = res[z]["bridge"]
        lines += [f"## {z} ({len(br['tasks'])} left-out tasks, in-library requests {br['in_library_requests']}; "
                  f"nearest remaining expert: hit {br['nearest_left_out_hit']})", "",
                  "| mode | bridge | margin | left-out hit | left-out taken | in-library taken | validation | paraphrase | terse |"
                  + (" content kept |" if z == "image" else ""),
                  "|---|---|---|---|---|---|---|---|---|" + ("---|" if z == "image" else "")]  # fmt: skip
        for r in br["grid"]:
            s = r["in_library_taken_by_source"]
            lines.append(f"| {r['mode'] if r['bridge'] is not None else 'none'} | {r['bridge']} | {r['margin']} | "
                         f"{r['left_out_hit']} | {r['left_out_taken']} | {r['in_library_taken']} | {s['validation']} | "
                         f"{s['paraphrase']} | {s['terse']} |"
                         + (f" {r['left_out_content_kept']} |" if z == "image" else ""))  # fmt: skip
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.generation_analogy", description=__doc__)
    p.add_argument("--n", type=int, default=16, help="left-out training tasks per zoo")
    p.add_argument("--zoos", nargs="*", default=["image", "text"])
    p.add_argument("--counts", action="store_true", help="also rerun the blend-count table")
    p.add_argument("--out", type=Path, default=RESULTS / "generation_analogy.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for z in args.zoos:
        part = out.setdefault(z, {})
        if "methods" in part:  # results of the blend-count table, kept under their own key
            out[z] = part = {"counts": part}
        if args.counts:
            part["counts"] = run_counts(z, args.n)
        part["bridge"] = run_bridge(z, args.n)
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    if all("bridge" in out.get(z, {}) for z in ("image", "text")):
        out["chosen"] = choose({z: out[z] for z in ("image", "text")})
    out["command_note"] = f"--n {args.n}"
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(to_markdown(out))
    print(json.dumps(out.get("chosen"), indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
