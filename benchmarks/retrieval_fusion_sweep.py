"""Replay hybrid fusion rules offline on the voice queries (issue 15).

``python -m benchmarks.retrieval_fusion_sweep dump OUT.json`` ingests both zoos once and stores,
per query, every zoo adapter's weights and text cosines (slow: minutes). ``… sweep OUT.json``
replays fusion rules on them (seconds) and prints R@1 / R@5 / MRR on the tuning set
(training-task queries of every voice but the held-out one) and, for reporting only, on the
other sets. Rules mirror ``loradex.search.fuse``: z-scores over the union of each signal's top
``REFERENCE_POOL``, spread floored at ``MIN_SPREAD``. How the numbers in
``results/retrieval_voices_notes.md`` were produced.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

Scores = dict[int, float]
Rule = Callable[[Scores, Scores], Scores]


def dump(out: Path) -> None:
    from benchmarks.retrieval import VOICES, ZOOS, _queries, adapter_tasks, zoo_family
    from loradex.service import LocalService

    held_out = json.loads(VOICES.read_text())["held_out_voice"]
    data: dict[str, object] = {"held_out_voice": held_out}
    for kind, zoo in ZOOS.items():
        manifest = json.loads((zoo / "manifest.json").read_text())
        family, qs = zoo_family(manifest), _queries(manifest)
        qs["unseen_paraphrases"], qs["heldout_tasks"] = qs["unseen_paraphrases"][::4], qs["heldout_tasks"][::4]
        with tempfile.TemporaryDirectory() as d:
            svc = LocalService.open(Path(d))
            svc.ingest([zoo / "adapters"])
            rows = svc.list(family=family)
            folder_task = adapter_tasks(manifest)
            rows_out = []
            for qname, items in qs.items():
                for text, task in items:
                    sig = {m: {h.adapter["id"]: h.score for h in svc.search(text, len(rows), mode=m, family=family)}
                           for m in ("weights", "text")}  # fmt: skip
                    rows_out.append({"set": qname, "query": text, "task": task, **sig})
            data[kind] = {"task_of": {r["id"]: folder_task[r["name"]] for r in rows}, "queries": rows_out}
    out.write_text(json.dumps(data))


def _z(scores: Scores, ref: set[int]) -> Scores:
    from loradex.search import MIN_SPREAD

    vals = [scores[i] for i in ref if i in scores]
    mean = sum(vals) / len(vals)
    std = max((sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5, MIN_SPREAD)
    return {i: (v - mean) / std for i, v in scores.items()}


def zfuse(ww: float, wt: float, conf: Callable[[list[float]], float] | None = None, a: float = 0.0) -> Rule:
    from loradex.search import REFERENCE_POOL

    def rule(w: Scores, t: Scores) -> Scores:
        ref = set(sorted(w, key=lambda i: -w[i])[:REFERENCE_POOL]) | set(
            sorted(t, key=lambda i: -t[i])[:REFERENCE_POOL]
        )
        zw, zt = _z(w, ref), _z(t, ref)
        kw, kt = ww, wt
        if conf is not None:
            kw *= math.exp(a * conf(sorted(zw.values(), reverse=True)))
            kt *= math.exp(a * conf(sorted(zt.values(), reverse=True)))
        return {i: (kw * zw.get(i, 0.0) + kt * zt.get(i, 0.0)) / (kw + kt) for i in set(w) | set(t)}

    return rule


def rrf(ww: float, wt: float, k0: int) -> Rule:
    def rule(w: Scores, t: Scores) -> Scores:
        rw = {i: r for r, i in enumerate(sorted(w, key=lambda i: -w[i]))}
        rt = {i: r for r, i in enumerate(sorted(t, key=lambda i: -t[i]))}
        return {i: ww / (k0 + rw.get(i, 10**6)) + wt / (k0 + rt.get(i, 10**6)) for i in set(w) | set(t)}

    return rule


CONFIDENCES: dict[str, Callable[[list[float]], float]] = {
    "top-1 margin": lambda z: z[0] - z[1],
    "top-1 minus mean of next 4": lambda z: z[0] - sum(z[1:5]) / len(z[1:5]),
    "top-1 z": lambda z: z[0],
}


def rules() -> dict[str, Rule]:
    out: dict[str, Rule] = {"weights": lambda w, t: w, "text": lambda w, t: t}
    for wt in (0.3, 0.4, 0.5, 0.6):
        out[f"z {1 - wt:.1f}/{wt:.1f}"] = zfuse(1 - wt, wt)
    for k0 in (5, 20, 60):
        for wt in (0.3, 0.5):
            out[f"rrf k0={k0} text={wt}"] = rrf(1 - wt, wt, k0)
    for name, conf in CONFIDENCES.items():
        for a in (0.5, 1.0, 2.0):
            out[f"z 0.7/0.3 × exp({a} × {name})"] = zfuse(0.7, 0.3, conf, a)
    return out


def sweep(path: Path) -> None:
    data = json.loads(path.read_text())
    held_out = data.pop("held_out_voice")
    sets: dict[str, Callable[[str], bool]] = {
        "tuning": lambda q: "/training" in q and not q.startswith(held_out + "/"),
        "paraphrases": lambda q: "/" not in q,
        "voices, held-out tasks": lambda q: "/held-out" in q and not q.startswith(held_out + "/"),
    }
    print("rule".ljust(44) + "".join(s.rjust(26) for s in sets))
    for name, rule in rules().items():
        cells = []
        for pred in sets.values():
            ranks = []
            for zoo in data.values():
                task_of = {int(i): t for i, t in zoo["task_of"].items()}
                for q in zoo["queries"]:
                    if not pred(q["set"]):
                        continue
                    s = rule({int(i): v for i, v in q["weights"].items()}, {int(i): v for i, v in q["text"].items()})
                    order = sorted(s, key=lambda i: (-s[i], i))
                    ranks.append(next((r for r, i in enumerate(order) if task_of[i] == q["task"]), len(order)))
            n = len(ranks)
            r1, r5, mrr = (
                sum(r < 1 for r in ranks) / n,
                sum(r < 5 for r in ranks) / n,
                sum(1 / (r + 1) for r in ranks) / n,
            )
            cells.append(f"{r1:.3f}/{r5:.3f}/{mrr:.3f}".rjust(26))
        print(name.ljust(44) + "".join(cells))


if __name__ == "__main__":
    cmd, file = sys.argv[1], Path(sys.argv[2])
    dump(file) if cmd == "dump" else sweep(file)
