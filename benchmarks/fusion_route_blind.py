"""Blind requests for text-zoo tasks, routed among 8 loaded adapters as ``compose`` routes them.

    python -m benchmarks.fusion_route_blind [--home /tmp/gw_home] [--out FILE]

Every request of ``benchmarks.registry_requests`` (the request sets written blind in many voices)
whose task is a one-step text-zoo task: the task's adapter and 7 others loaded (seeded random
one-step tasks, or ``siblings``: the task's own family first, ``benchmarks.fusion_route.others_for``).
Routed (top score) by ``search`` (``Searcher.scores_among``, what a registry with a text map routes
by) and by ``search + examples`` (``loradex.composition.example_shares``: the examples written in the
request run on the loaded adapters, reproducing ones lifted by ``EXAMPLE_LIFT`` × their share), what
``compose`` does now. Nothing here was fitted. The home is the registry ``make serve`` builds (built
when missing). Rates per distractor kind and training / held-out task; the requests whose route changed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
LOADED = 8


def run(home: Path) -> dict[str, Any]:
    from benchmarks.fusion_route import TEXT_ZOO, others_for
    from benchmarks.generation_words import open_home
    from benchmarks.registry_requests import voiced
    from loradex.composition import EXAMPLE_LIFT, example_shares
    from loradex.examples import examples_in

    svc = open_home(home)
    tasks = {t["id"]: t for t in json.loads((TEXT_ZOO / "manifest.json").read_text())["tasks"]}
    one_step = [t for t in tasks if "__then__" not in t]
    rows_by = {r["name"]: r for r in svc.registry.list() if r["family"] == "zoo-text"}
    counts: dict[str, list[int]] = {}
    changed: list[dict[str, str]] = []
    n_examples = 0
    t0 = time.perf_counter()
    for name, task, q, voice in voiced():
        if task not in one_step or task not in rows_by:
            continue
        shows = bool(examples_in(q))
        n_examples += shows
        for kind in ("random", "siblings"):
            loaded = [task, *others_for(task, tasks, one_step, kind)][:LOADED]
            rows = [rows_by[t] for t in loaded]
            found = svc.searcher.scores_among(q, [int(r["id"]) for r in rows])
            plain = [found.get(int(r["id"]), (-1e9,))[0] for r in rows]
            shown = example_shares(svc, q, rows) if shows else None
            lifted = [s + EXAMPLE_LIFT * x for s, x in zip(plain, shown[0], strict=True)] if shown else plain
            before = loaded[max(range(len(loaded)), key=lambda i: plain[i])]
            after = loaded[max(range(len(loaded)), key=lambda i: lifted[i])]
            c = counts.setdefault(f"{kind}/{tasks[task]['split']}", [0, 0, 0])
            c[0] += before == task
            c[1] += after == task
            c[2] += 1
            if before != after:
                changed.append({"others": kind, "task": task, "search": before, "with_examples": after,
                                "set": name, "voice": voice, "request": q})  # fmt: skip
    svc.close()
    rates = {key: {"n": n, "search": round(a / n, 3), "search_and_examples": round(b / n, 3)}
             for key, (a, b, n) in sorted(counts.items())}  # fmt: skip
    return {"suite": "fusion_route_blind", "home": str(home), "loaded": LOADED, "requests_with_examples": n_examples,
            "rates": rates, "changed": changed, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fusion_route_blind", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--home", type=Path, default=Path("/tmp/gw_home"), help="data dir (built when missing)")
    p.add_argument("--out", type=Path, default=RESULTS / "fusion_route_blind.json")
    a = p.parse_args(argv)
    res = run(a.home)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    lines = ["| others / tasks | requests | search | search + examples |", "|---|---|---|---|"]
    lines += [
        f"| {k} | {v['n']} | {v['search']:.3f} | {v['search_and_examples']:.3f} |" for k, v in res["rates"].items()
    ]
    wrong = sum(c["with_examples"] != c["task"] for c in res["changed"])
    a.out.with_suffix(".md").write_text(
        f"Top-1 among {LOADED} loaded text-zoo adapters for blind requests (`python -m benchmarks.fusion_route_blind`; "
        f"{res['requests_with_examples']} requests show examples; {len(res['changed'])} routes changed, {wrong} of them "
        f"to a wrong adapter; {res['seconds']} s)\n\n" + "\n".join(lines) + "\n")  # fmt: skip
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
