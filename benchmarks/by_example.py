"""Suite ``by_example``: search by example on the text zoo, the algorithm before issue 15's speed-up
(``old_search_by_example``, kept here verbatim) against ``loradex.verify`` now, in the same run.

The text zoo is ingested into a fresh registry. Per task, three examples: the first three of the
zoo's evaluation inputs (``eval_inputs``) and the task's outputs on them. Held-out tasks have their
adapters in the zoo like training tasks (held out means no encoder or generator trained on their
descriptions), so both splits have an adapter to find; the ordinary search, which sets the order
candidates are run in, is weaker on held-out tasks. A hit is correct when it is an adapter of the
task (any seed) or of another task that is the same function on the three examples.

Voices: ``none`` (the examples only: candidates in the order of the search for the examples
written out) on training tasks (every ``TRAIN_STEP``-th) and every held-out task; ``everyday`` (the
``everyday`` prompt of ``retrieval_voices.json``) on the tasks that file covers. Each query runs the
old and the new search back to back (the order alternating) with ``k = 5``, then the new one with
``k = 1``; latencies are taken after one warm-up query of each (the base model, the text encoder
and, for the new search, the stacked factors are loaded then: reported as ``first_call_s``). Torch
runs on ``THREADS`` thread(s) for both: the machine's two cores are shared, and two threads that
wait on each other under load make every time a measure of the neighbours. The new search is then
timed once more from a caller on torch's default ``DEFAULT_THREADS`` (what a user gets: the search
puts a small base on one thread itself).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.retrieval import VOICES, ZOO_TEXT, adapter_tasks

K = 5
TRAIN_STEP = 8  # every 8th training task (the old search takes seconds per query)
N_EXAMPLES = 3
THREADS = 1
DEFAULT_THREADS = 2  # torch's default here (one per core): the new search is timed once more from it


def old_search_by_example(svc: Any, prompt: str, examples: list[tuple[str, str]], k: int, filters: Any) -> Any:
    """``loradex.verify.search_by_example`` before the speed-up: every adapter of a family of at
    most 512 screened on the first example, 24 at a time, by greedy decoding (row weights)."""
    import torch

    from fusion.compose import greedy_generate
    from fusion.runtime import install
    from loradex.bases import load_base
    from loradex.types import Filters, SearchResults

    def run_chunk(model: Any, tok: Any, adapters: list[Any], inputs: list[str]) -> list[list[str]]:
        n = len(adapters)
        outs: list[list[str]] = [[] for _ in range(n)]
        with install(model, adapters, [f"c{i}" for i in range(n)]) as handle:
            handle.set_row_weights(torch.eye(n))
            for x in inputs:
                with torch.no_grad():
                    got = greedy_generate(model, tok, [x] * n, max_new_tokens=len(x) * 3 + 8)
                for i in range(n):
                    outs[i].append(got[i])
        return outs

    family = filters.family
    scoped = Filters.of(filters, family=family)
    rows = svc.registry.list(scoped)
    query = prompt.strip() or "; ".join(f"{i} → {o}" for i, o in examples)
    ranked = {h.adapter["id"]: n for n, h in enumerate(svc.search(query, min(len(rows), 1000), filters=scoped))}
    order = sorted((r["id"] for r in rows), key=lambda i: (ranked.get(i, len(ranked)), i))
    model, tok = load_base(family)
    first_in, first_out = examples[0]
    survivors: list[int] = []
    for start in range(0, len(order), 24):
        ids = order[start : start + 24]
        outs = run_chunk(model, tok, [svc.load(i) for i in ids], [first_in])
        survivors += [i for i, o in zip(ids, outs, strict=True) if o[0] == first_out]
    score = {i: 0.0 for i in order}
    rest = examples[1:]
    for start in range(0, len(survivors), 24):
        ids = survivors[start : start + 24]
        outs = run_chunk(model, tok, [svc.load(i) for i in ids], [x for x, _ in rest]) if rest else [[]] * len(ids)
        for i, o in zip(ids, outs, strict=True):
            score[i] = (1 + sum(a == b for a, (_, b) in zip(o, rest, strict=True))) / len(examples)
    top = sorted(order, key=lambda i: (-score[i], order.index(i)))[:k]
    found = svc.registry.hits(top)
    return SearchResults([_Hit(found[i], score[i]) for i in top if i in found], nothing_fits=not any(score.values()))


class _Hit:
    def __init__(self, adapter: dict[str, Any], score: float) -> None:
        self.adapter, self.score = adapter, score


def queries(manifest: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    """[{task, split, voice, prompt, examples}] (see the module docstring)."""
    from benchmarks.zoo.text.evaluate import eval_inputs
    from benchmarks.zoo.text.tasks import all_tasks

    tasks = {t.id: t for t in all_tasks()}
    split = {t["id"]: t["split"] for t in manifest["tasks"]}
    train = [t for t in split if split[t] == "train"][:: TRAIN_STEP * (3 if quick else 1)]
    held = [t for t in split if split[t] == "heldout"][:: 3 if quick else 1]
    everyday = {t: v["everyday"] for t, v in json.loads(VOICES.read_text())["text"].items() if t in split}
    if quick:
        everyday = dict(list(everyday.items())[::4])
    out = []
    for voice, chosen in (("none", {t: "" for t in train + held}), ("everyday", everyday)):
        for t, prompt in chosen.items():
            xs = eval_inputs(tasks[t], N_EXAMPLES)
            out.append({"task": t, "split": split[t], "voice": voice, "prompt": prompt,
                        "examples": [(x, tasks[t].apply(x)) for x in xs]})  # fmt: skip
    return out


def correct(task_of: dict[int, str], hit_id: int, examples: list[tuple[str, str]]) -> bool:
    """An adapter of a task that writes the expected outputs on the examples (the query's task included)."""
    from benchmarks.zoo.text.tasks import all_tasks

    fn = {t.id: t for t in all_tasks()}[task_of[hit_id]]
    return all(fn.apply(x) == y for x, y in examples)


def suite_by_example(args: argparse.Namespace) -> dict[str, Any]:
    import sys

    import torch

    from loradex import verify
    from loradex.service import LocalService
    from loradex.types import Filters

    torch.set_num_threads(THREADS)

    zoo = Path(getattr(args, "zoo_dir", None) or ZOO_TEXT)
    if not (zoo / "manifest.json").is_file():
        return {"missing": f"{zoo} has no manifest.json: python -m benchmarks.zoo build text"}
    manifest = json.loads((zoo / "manifest.json").read_text())
    qs = queries(manifest, getattr(args, "quick", False))
    family = f"zoo-{manifest['kind']}"
    scoped = Filters(family=family)
    with tempfile.TemporaryDirectory() as d:
        svc = LocalService.open(Path(d))
        t0 = time.perf_counter()
        svc.ingest([zoo / "adapters"])
        ingest_s = time.perf_counter() - t0
        folder_task = adapter_tasks(manifest)
        task_of = {r["id"]: folder_task[r["name"]] for r in svc.list(family=family)}
        runs = {
            "old": lambda q, k: old_search_by_example(svc, q["prompt"], q["examples"], k, scoped),
            "new": lambda q, k: verify.search_by_example(svc, q["prompt"], q["examples"], k, scoped),
        }
        first: dict[str, float] = {}
        verify._STACKS.clear()
        svc.search("reverse the word", 1, filters=scoped)  # the text encoder, loaded for both
        for name in ("new", "old"):  # warm-up: the new search builds its stack here
            t0 = time.perf_counter()
            runs[name](qs[0], K)
            first[name] = time.perf_counter() - t0
        per: list[dict[str, Any]] = []
        for n, q in enumerate(qs):
            rec: dict[str, Any] = {"task": q["task"], "split": q["split"], "voice": q["voice"]}
            for name in ("old", "new") if n % 2 else ("new", "old"):
                t0 = time.perf_counter()
                res = runs[name](q, K)
                rec[f"{name}_s"] = time.perf_counter() - t0
                ok = [correct(task_of, h.adapter["id"], q["examples"]) for h in res]
                rec[f"{name}_r1"], rec[f"{name}_r5"] = bool(ok[:1] and ok[0]), any(ok[:5])
                rec[f"{name}_top"] = res[0].adapter["name"] if res else None
                if name == "new":
                    rec["new_why"] = res[0].why if res else ""
            t0 = time.perf_counter()
            one = runs["new"](q, 1)
            rec["new_k1_s"] = time.perf_counter() - t0
            rec["new_k1_same_top"] = bool(one) and one[0].adapter["name"] == rec["new_top"]
            rec["new_k1_r1"] = bool(one) and correct(task_of, one[0].adapter["id"], q["examples"])
            rec["new_k1_why"] = one[0].why if one else ""
            per.append(rec)
            print(f"[by_example] {n + 1}/{len(qs)} {q['task']} {q['voice']}: old {rec['old_s']:.2f} s, "
                  f"new {rec['new_s']:.2f} s, new k=1 {rec['new_k1_s']:.2f} s", file=sys.stderr, flush=True)  # fmt: skip
        default = torch.get_num_threads()
        torch.set_num_threads(DEFAULT_THREADS)  # the new search again, called as a default process calls it
        for q, rec in zip(qs, per, strict=True):
            t0 = time.perf_counter()
            runs["new"](q, K)
            rec["new_default_threads_s"] = time.perf_counter() - t0
        torch.set_num_threads(default)
        svc.close()

    def pct(xs: list[float], p: float) -> float:
        s = sorted(xs)
        return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]

    rows = []
    groups = [("all", "all"), ("train", "all"), ("heldout", "all")] + sorted({(q["split"], q["voice"]) for q in per})
    for split, voice in groups:
        sel = [r for r in per if (split == "all" or r["split"] == split) and (voice == "all" or r["voice"] == voice)]
        for name, key in (("old k=5", "old"), ("new k=5", "new"), ("new k=1", "new_k1")):
            times = [r[f"{key}_s"] for r in sel]
            rec: dict[str, Any] = {"split": split, "voice": voice, "search": name, "queries": len(sel)}
            rec["recall@1"] = statistics.fmean(r[f"{key}_r1"] for r in sel)
            rec["recall@5"] = statistics.fmean(r[f"{key}_r5"] for r in sel) if key != "new_k1" else "-"
            rec["p50_s"], rec["p90_s"] = statistics.median(times), pct(times, 0.9)
            rec["p50_ratio_to_old"] = rec["p50_s"] / statistics.median(r["old_s"] for r in sel)
            rows.append(rec)
    return {
        "zoo": str(zoo.relative_to(zoo.parents[2])) if len(zoo.parents) > 2 else str(zoo),
        "family": family,
        "adapters": len(task_of),
        "ingest_s": ingest_s,
        "k": K,
        "torch_threads": THREADS,
        "examples_per_query": N_EXAMPLES,
        "first_call_s": first,
        "new_k1_same_top_as_k5": statistics.fmean(r["new_k1_same_top"] for r in per),
        "new_same_top_as_old": statistics.fmean(r["new_top"] == r["old_top"] for r in per),
        "new_k5_called_with_default_threads_s": {
            "caller_threads": DEFAULT_THREADS,
            "note": "the search itself runs a base under 20M parameters on one thread (verify.SMALL_BASE)",
            "p50": statistics.median(r["new_default_threads_s"] for r in per),
            "p90": pct([r["new_default_threads_s"] for r in per], 0.9),
        },
        "candidates_run_k1": statistics.median(_ran(r["new_k1_why"]) for r in per),
        "candidates_run_k5": statistics.median(_ran(r["new_why"]) for r in per),
        "rows": rows,
        "runs": per,  # per query (left out of the markdown)
    }


def _ran(why: str) -> int:
    """How many candidates the new search ran, from its ``why`` text."""
    import re

    m = re.search(r"(?:all )?(\d+)(?: of \d+)? candidates run", why)
    return int(m.group(1)) if m else 0
