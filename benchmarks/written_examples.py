"""Requests with examples written in them, searched as words and as examples, on the default registry.

    python -m benchmarks.written_examples [--home /tmp/gw_home] [--out benchmarks/results/written_examples.json]

Queries: the ``examples`` voice of ``generation_queries.json`` (35 held-out text-zoo tasks, three
``IN -> OUT`` pairs each, written before this was built), the ``long`` voice of
``retrieval_voices.json`` (requests that mention an example in passing, "like turning cat into dbu"),
the text-zoo requests of ``retrieval_fresh.json`` (plain requests, some with an example), and the two
sets of ``written_examples_prose.json`` (the task explained through an example in prose: "so hello
would come out as olleh", "if I type dog I want god back").
Per query: the rank of the task's adapter (any seed) in the ordinary search of the words
(``Searcher.search``) and in ``LocalService.search``, which reads the examples (``examples_in``) and
runs the candidates on the base; R@1, MRR over the top 10, and p50 latency of the latter.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def run(home: Path) -> dict[str, Any]:
    from benchmarks.generation_data import QUERIES
    from benchmarks.generation_words import open_home
    from benchmarks.spelling import task_rank
    from loradex.examples import examples_in
    from loradex.types import Filters

    svc = open_home(home)
    sets = {
        "examples voice (held-out tasks)": [(q["query"], q["task"]) for q in json.loads(QUERIES.read_text())["text"]
                                            if q["voice"] == "examples"],  # fmt: skip
        "long voice (text zoo)": [(v["long"], t) for t, v in
                                  json.loads((REPO / "benchmarks" / "retrieval_voices.json").read_text())["text"].items()],
        "fresh voice (text zoo)": [(q, t) for q, t in
                                   json.loads((REPO / "benchmarks" / "retrieval_fresh.json").read_text())["text"]],
    }  # fmt: skip
    prose = json.loads((REPO / "benchmarks" / "written_examples_prose.json").read_text())
    sets["examples in prose, team"] = [(q, t) for q, t in prose["team"]]
    sets["examples in prose, independent author"] = [(q, t) for q, t in prose["independent"]]
    out: dict[str, Any] = {}
    for name, rows in sets.items():
        words, read, secs, per = [], [], [], []
        for q, task in rows:
            a = task_rank(svc.searcher.search(q, 10, "hybrid", Filters()), task)
            t0 = time.perf_counter()
            hits = svc.search(q, k=10)
            secs.append(time.perf_counter() - t0)
            b = task_rank(hits, task)
            words.append(a)
            read.append(b)
            per.append({"query": q, "task": task, "examples": examples_in(q), "words_rank": a, "read_rank": b})

        def agg(xs: list[int | None]) -> dict[str, float]:
            return {"r1": round(sum(x == 0 for x in xs) / len(xs), 3),
                    "mrr": round(sum(1 / (x + 1) for x in xs if x is not None) / len(xs), 3)}  # fmt: skip

        out[name] = {"queries": len(rows), "with_examples": sum(bool(p["examples"]) for p in per),
                     "words": agg(words), "read": agg(read), "p50_s": round(statistics.median(secs), 3), "rows": per}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.written_examples", description=__doc__)
    p.add_argument("--home", type=Path, default=Path("/tmp/gw_home"), help="data dir (built when missing)")
    p.add_argument("--out", type=Path, default=RESULTS / "written_examples.json")
    args = p.parse_args(argv)
    res = run(args.home)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(
        "| queries | n | examples read in | words only R@1 / MRR | read R@1 / MRR | p50 s |\n|---|---|---|---|---|---|"
    )
    for name, r in res.items():
        print(
            f"| {name} | {r['queries']} | {r['with_examples']} | {r['words']['r1']} / {r['words']['mrr']} | "
            f"**{r['read']['r1']} / {r['read']['mrr']}** | {r['p50_s']} |"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
