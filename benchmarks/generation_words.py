"""How ``generate`` copes with requests in a user's own words, on the default registry.

    python -m benchmarks.generation_words [--home /tmp/gw_home] [--half tune|report|all] [--n 50]
        [--out benchmarks/results/generation_words_<half>.json]   (tables printed)

The requests (``benchmarks/generation_words.json``) were written before any generator output was
looked at, each naming the text-zoo task it means, and split up front into a ``tune`` half (looked
at while fixing) and a ``report`` half (measured at the end). Each request is given to the
default generator of ``zoo-text`` exactly as ``LocalService.generate`` gives it (``loradex.generation.make``:
nothing is registered, so the registry stays as ``prepare`` built it), and to
the ordinary search (top ingested ``zoo-text`` adapter). Both adapters, the task's own oracle and
the bare base are judged by the zoo's evaluator: exact match on the first ``n`` of the task's
evaluation strings. A missing home is built first (``ui.server.prepare``: samples + both zoos).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REQUESTS = REPO / "benchmarks" / "generation_words.json"
RESULTS = REPO / "benchmarks" / "results"
FAMILY = "zoo-text"


def load_requests(half: str = "all") -> list[dict[str, Any]]:
    rows = json.loads(REQUESTS.read_text())["requests"]
    return [r for r in rows if half == "all" or r["half"] == half]


def open_home(home: Path) -> Any:
    from loradex import LocalService

    if not (home / "loradex.db").exists():
        from ui.server import prepare

        prepare(str(home))
    return LocalService.open(home)


def run(home: Path, half: str, n: int, method: str | None = None) -> dict[str, Any]:
    from benchmarks.generation_data import manifest, weights_path
    from benchmarks.generation_judges import TextJudge
    from loradex.generation import make, pick
    from registry.filters import Filters
    from registry.formats import read_adapter

    rows = load_requests(half)
    svc = open_home(home)
    man = {t["id"]: t for t in manifest("text")["tasks"]}
    method, entry = pick(svc, FAMILY, method)
    t0 = time.perf_counter()
    made = [make(svc, r["text"], family=FAMILY, method=method, seed=0)[0] for r in rows]  # as generate makes it
    gen_s = time.perf_counter() - t0
    found = []
    for r in rows:
        hits = svc.search(r["text"], k=1, filters=Filters(family=FAMILY, origin="ingested"))
        top = hits[0].adapter if hits else None
        found.append((top["name"], svc.load(int(top["id"]))) if top else (None, None))
    tasks = sorted({r["task"] for r in rows})
    oracle = {t: read_adapter(weights_path("text", man[t]["adapters"][0]["path"])) for t in tasks}
    judge = TextJudge(n=n)
    ev = [(r["task"], m.adapter) for r, m in zip(rows, made, strict=True)]
    ev += [(r["task"], ad) for r, (_, ad) in zip(rows, found, strict=True)]
    ev += [(t, oracle[t]) for t in tasks] + [(t, None) for t in tasks]
    acc = judge.accuracy(ev)
    k = len(rows)
    gen_acc, ret_acc = acc[:k], acc[k : 2 * k]
    ora = dict(zip(tasks, acc[2 * k : 2 * k + len(tasks)], strict=True))
    base = dict(zip(tasks, acc[2 * k + len(tasks) :], strict=True))
    out_rows = []
    for r, m, (name, _), g, s in zip(rows, made, found, gen_acc, ret_acc, strict=True):
        lin = m.lineage
        out_rows.append({
            **r, "split": man[r["task"]]["split"], "generated": g, "retrieved": s, "oracle": ora[r["task"]],
            "base": base[r["task"]], "retrieved_name": name,
            "experts": [(e["name"], e["weight"]) for e in lin.get("experts", [])],
            "analogy": bool(lin.get("analogy")), "reading": lin.get("reading"), "chosen": lin.get("chosen"),
        })  # fmt: skip
    return {"half": half, "n": n, "method": method, "version": entry["version"], "generate_s": round(gen_s, 2),
            "summary": summary(out_rows), "rows": out_rows}  # fmt: skip


def stamp_steps(methods: tuple[str, ...] = ("analogy", "nearest")) -> dict[str, int]:
    """Write ``info["expert_steps"]`` (``generators.steps.description_steps`` of each expert's training
    texts, what ``library_state`` records when a checkpoint is trained) into the bundled text-zoo
    checkpoints that chain, without refitting them. Returns method → experts that chain."""
    from benchmarks.generation_data import CHECKPOINTS, manifest
    from generators.base import checkpoint_version
    from generators.steps import description_steps

    texts = {t["id"]: [t["canonical"]] + [p["text"] for p in t["paraphrases"] if p["split"] == "train"]
             for t in manifest("text")["tasks"] if t["split"] == "train"}  # fmt: skip
    out = {}
    for m in methods:
        f = CHECKPOINTS / FAMILY / m / "config.json"
        cfg = json.loads(f.read_text())
        cfg["info"]["expert_steps"] = [description_steps(texts[t]) for t in cfg["info"]["expert_tasks"]]
        f.write_text(json.dumps(cfg, indent=1, sort_keys=True) + "\n")
        mf = f.with_name("metrics.json")  # its "version" names the checkpoint's content
        if mf.is_file():
            mf.write_text(
                json.dumps({**json.loads(mf.read_text()), "version": checkpoint_version(f.parent)}, indent=1) + "\n"
            )
        out[m] = sum(s > 1 for s in cfg["info"]["expert_steps"])
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean exact match of generated / retrieved / oracle / base; share of requests ≥ 0.9 of oracle; by kind and split."""

    def agg(rs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "requests": len(rs),
            "generated": round(statistics.fmean(r["generated"] for r in rs), 3),
            "retrieved": round(statistics.fmean(r["retrieved"] for r in rs), 3),
            "oracle": round(statistics.fmean(r["oracle"] for r in rs), 3),
            "base": round(statistics.fmean(r["base"] for r in rs), 3),
            "generated_solved": sum(r["generated"] >= 0.9 * r["oracle"] for r in rs),
            "retrieved_solved": sum(r["retrieved"] >= 0.9 * r["oracle"] for r in rs),
        }

    out: dict[str, Any] = {"all": agg(rows)}
    for key in ("split", "kind"):
        for v in sorted({r[key] for r in rows}):
            out[f"{key}={v}"] = agg([r for r in rows if r[key] == v])
    return out


def to_markdown(res: dict[str, Any]) -> str:
    lines = [f"### half `{res['half']}` — method `{res['method']}` (version {res['version']}), n={res['n']}", "",
             "| group | requests | generated | retrieved | oracle | base | generated solved | retrieved solved |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for g, s in res["summary"].items():
        lines.append(f"| {g} | {s['requests']} | {s['generated']:.3f} | {s['retrieved']:.3f} | {s['oracle']:.3f} | "
                     f"{s['base']:.3f} | {s['generated_solved']} | {s['retrieved_solved']} |")  # fmt: skip
    lines += ["", "| request | task | split | generated | retrieved | experts (weight) |", "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        ex = ", ".join(f"{n} {w:+.2f}" for n, w in r["experts"])
        lines.append(
            f"| {r['text']} | {r['task']} | {r['split']} | {r['generated']:.2f} | {r['retrieved']:.2f} | {ex} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.generation_words", description=__doc__)
    p.add_argument("--home", type=Path, default=Path("/tmp/gw_home"), help="data dir (built when missing)")
    p.add_argument("--half", choices=("tune", "report", "all"), default="tune")
    p.add_argument("--n", type=int, default=50, help="evaluation strings per task")
    p.add_argument("--method", default=None, help="generator method (default: the family's default)")
    p.add_argument("--out", type=Path, default=None, help="JSON (default: results/generation_words_<half>.json)")
    p.add_argument("--stamp", action="store_true", help="only record expert_steps in the bundled checkpoints")
    args = p.parse_args(argv)
    if args.stamp:
        print(stamp_steps())
        return 0
    import torch

    torch.set_num_threads(1)
    res = run(args.home, args.half, args.n, args.method)
    out = args.out or RESULTS / f"generation_words_{args.half}.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(to_markdown(res))  # results/generation_words.md is written by hand from these figures
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
