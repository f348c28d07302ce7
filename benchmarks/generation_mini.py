"""Reduced generation check (held-out text tasks, canonical description, 10 eval strings per task), run when the full suite could not finish on the shared CPU: ``python -m benchmarks.generation_mini`` → benchmarks/results/generation_mini.json."""

import json
import statistics
import time

import torch

from benchmarks.generation_data import CHECKPOINTS, load_queries, manifest, weights_path
from benchmarks.generation_judges import TextJudge
from generators import load_generator
from registry.formats import read_adapter

torch.set_num_threads(1)

t0 = time.time()
man = {t["id"]: t for t in manifest("text")["tasks"]}
rows = [r for r in load_queries()["text"] if r["split"] == "heldout_task" and r["voice"] == "canonical"]
gens = {m: load_generator(CHECKPOINTS / "zoo-text" / m) for m in ("nearest", "topk_mean", "mean_all", "hypernet")}
ev = []
for r in rows:
    t = r["task"]
    ev.append(("base", t, None))
    ev.append(("oracle", t, read_adapter(weights_path("text", man[t]["adapters"][0]["path"]))))
    for m, g in gens.items():
        ev.append((m, t, g.generate(r["query"], seed=0).adapter))
print("generated", time.time() - t0, flush=True)
j = TextJudge(n=10)
acc = j.accuracy([(t, a) for _, t, a in ev])
res = {}
for (m, t, _), a in zip(ev, acc, strict=True):
    res.setdefault(m, {})[t] = a
out = {m: {"mean_exact_match": statistics.fmean(v.values())} for m, v in res.items()}
for m in out:
    g = [
        (res[m][t] - res["base"][t]) / (res["oracle"][t] - res["base"][t])
        for t in res[m]
        if res["oracle"][t] - res["base"][t] >= 0.05
    ]
    out[m]["gain_recovered"] = statistics.fmean(g)
json.dump(
    {
        "setup": "held-out text tasks, canonical description only, first 10 eval strings per task",
        "per_task": res,
        "summary": out,
        "seconds": time.time() - t0,
    },
    open("benchmarks/results/generation_mini.json", "w"),
    indent=1,
)
print(json.dumps(out, indent=1), time.time() - t0)
