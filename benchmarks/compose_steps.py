"""Suite ``compose_steps``: language requests of two steps ("X, then Y") composed end to end.

The text zoo is ingested into a fresh registry and its text map fitted on the zoo's training texts,
as a fresh start does. Every two-step task is asked with each of its texts (canonical description
and every paraphrase, both splits); its own adapters are left out, so the request has to be met
by composing one-step adapters. ``compose --auto 2`` picks the adapters as the product does
(``loradex.composition.part_picks``; the requests: ``compose_picks.two_step_requests``), then each strategy runs the task's ``N_INPUTS`` evaluation
strings through the zoo's base with those two adapters: ``auto`` (the default: a chain in the order
the steps run when the request names steps that route to different adapters, else the gate),
``gate`` (the default before ``auto``), ``linear`` (both at weight 1). Scored by exact match against
the task itself; ``chained`` is the share of requests ``auto`` ran as a chain; ``steps picked``
the share whose two picks are the task's two steps (any order). Training and held-out two-step
tasks are reported apart (neither was used to choose anything in ``auto``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.compose_picks import K

N_INPUTS = 8
STRATEGIES = ("auto", "gate", "linear")


def suite_compose_steps(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.compose_picks import two_step_requests
    from benchmarks.zoo.text.evaluate import eval_inputs
    from benchmarks.zoo.text.tasks import all_tasks
    from loradex.composition import compose, part_picks

    zoo_tasks = {t.id: t for t in all_tasks()}
    io: dict[str, tuple[list[str], list[str]]] = {}  # task id → (inputs, wanted outputs)
    sums: dict[tuple[str, str], list[float]] = {}  # (strategy, split) → [exact match sum, requests, chained, picked]
    t_auto: list[float] = []
    for r in two_step_requests(bool(getattr(args, "quick", False))):
        tid = str(r.record["id"])
        if tid not in io:
            inputs = eval_inputs(zoo_tasks[tid], N_INPUTS)
            io[tid] = (inputs, [zoo_tasks[tid].apply(x) for x in inputs])
        inputs, want = io[tid]
        refs = [h.adapter["id"] for h in part_picks(r.svc, r.text, r.hits, K, "zoo-text", exclude=r.own)]
        picked = sorted(r.task[i] for i in refs) == sorted(r.steps)
        for strategy in STRATEGIES:
            t0 = time.perf_counter()
            res = compose(r.svc, r.text, refs=refs, strategy=strategy, inputs=inputs)
            if strategy == "auto":
                t_auto.append(time.perf_counter() - t0)
            s = sums.setdefault((strategy, r.record["split"]), [0.0, 0, 0, 0])
            s[0] += sum(o == w for o, w in zip(res.outputs, want, strict=True)) / len(want)
            s[1] += 1
            s[2] += res.strategy == "chain"
            s[3] += picked
    rows = [{"strategy": strategy, "tasks": "training" if split == "train" else "held-out", "requests": n,
             "exact match": em / n, "chained": chained / n, "steps picked": picked / n}
            for (strategy, split), (em, n, chained, picked) in sorted(sums.items(), key=lambda kv: (kv[0][1], kv[0][0]))]  # fmt: skip
    t_auto.sort()
    return {"rows": rows, "k": K, "inputs_per_request": N_INPUTS, "two_step_tasks": len(io),
            "auto_compose_s_p50": t_auto[len(t_auto) // 2] if t_auto else None}  # fmt: skip
