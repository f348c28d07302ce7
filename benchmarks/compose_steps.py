"""Suite ``compose_steps``: language requests of two steps ("X, then Y") composed end to end.

The text zoo is ingested into a fresh registry and its text map fitted on the zoo's training texts,
as a fresh start does. Every two-step task is asked with each of its texts (canonical description
and every paraphrase, both splits); its own adapters are left out, so the request has to be met
by composing one-step adapters. ``compose --auto 2`` picks the adapters as the product does
(``loradex.composition.part_picks``), then each strategy runs the task's ``N_INPUTS`` evaluation
strings through the zoo's base with those two adapters: ``auto`` (the default: a chain in the order
the steps run when the request names steps that route to different adapters, else the gate),
``gate`` (the default before ``auto``), ``linear`` (both at weight 1). Scored by exact match against
the task itself; ``chained`` is the share of requests ``auto`` ran as a chain; ``steps picked``
the share whose two picks are the task's two steps (any order). Training and held-out two-step
tasks are reported apart (neither was used to choose anything in ``auto``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.retrieval import ZOO_TEXT

K = 2
POOL = 20
N_INPUTS = 8
STRATEGIES = ("auto", "gate", "linear")


def suite_compose_steps(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.zoo import training_texts
    from benchmarks.zoo.text.evaluate import eval_inputs
    from benchmarks.zoo.text.tasks import all_tasks
    from loradex.composition import compose, part_picks
    from loradex.service import LocalService

    manifest = json.loads((ZOO_TEXT / "manifest.json").read_text())
    task_of = {Path(a["path"]).name: t["id"] for t in manifest["tasks"] for a in t["adapters"]}
    zoo_tasks = {t.id: t for t in all_tasks()}
    two = [t for t in manifest["tasks"] if "__then__" in t["id"]]
    if getattr(args, "quick", False):
        two = two[::4]
    sums: dict[tuple[str, str], list[float]] = {}  # (strategy, split) → [exact match sum, requests, chained, picked]
    t_auto: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        svc = LocalService.open(Path(d) / "home")
        svc.ingest([ZOO_TEXT / "adapters"])
        svc.train_text_map(training_texts(manifest))
        task = {r["id"]: task_of.get(r["name"], r["name"]) for r in svc.registry.list()}
        for t in two:
            steps = t["id"].split("__then__")
            own = frozenset(i for i, tid in task.items() if tid == t["id"])
            inputs = eval_inputs(zoo_tasks[t["id"]], N_INPUTS)
            want = [zoo_tasks[t["id"]].apply(x) for x in inputs]
            for text in [t["canonical"]] + [p["text"] for p in t["paraphrases"]]:
                found = svc.search(text, k=POOL + len(own), family="zoo-text")
                hits = [h for h in found if h.adapter["id"] not in own][:POOL]
                refs = [h.adapter["id"] for h in part_picks(svc, text, hits, K, "zoo-text", exclude=own)]
                picked = sorted(task[i] for i in refs) == sorted(steps)
                for strategy in STRATEGIES:
                    t0 = time.perf_counter()
                    res = compose(svc, text, refs=refs, strategy=strategy, inputs=inputs)
                    if strategy == "auto":
                        t_auto.append(time.perf_counter() - t0)
                    s = sums.setdefault((strategy, t["split"]), [0.0, 0, 0, 0])
                    s[0] += sum(o == w for o, w in zip(res.outputs, want, strict=True)) / len(want)
                    s[1] += 1
                    s[2] += res.strategy == "chain"
                    s[3] += picked
        svc.close()
    rows = [{"strategy": strategy, "tasks": "training" if split == "train" else "held-out", "requests": n,
             "exact match": em / n, "chained": chained / n, "steps picked": picked / n}
            for (strategy, split), (em, n, chained, picked) in sorted(sums.items(), key=lambda kv: (kv[0][1], kv[0][0]))]  # fmt: skip
    t_auto.sort()
    return {"rows": rows, "k": K, "inputs_per_request": N_INPUTS, "two_step_tasks": len(two),
            "auto_compose_s_p50": t_auto[len(t_auto) // 2] if t_auto else None}  # fmt: skip
