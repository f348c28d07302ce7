"""Requests in people's own words, searched unfiltered on the default registry (issue 15).

    python -m benchmarks.registry_requests [--home /tmp/gw_home] [--out FILE]

The home is the registry ``make serve`` builds (samples + both zoos; built when missing, then tune its
text side as serve does: ``loradex --home H train-encoder --text --bundled --tune``). Requests:
every voice of ``retrieval_voices.json`` (both zoos), ``retrieval_fresh.json``,
``retrieval_direction.json`` (60 requests for tasks that come in confusable pairs: rotate left/right,
sort up/down, upper/lower, append/prepend, keep from the first/the n-th, Caesar forward/back, two
steps in either order), ``retrieval_direction2.json`` (48 more: rotations, sorts, two steps with one,
controls), ``retrieval_caesar.json`` (36 letter shifts, forward and backward) and
``retrieval_broad.json`` (90 requests over both zoos in eight voices: terse, chatty, question, use case,
typo, negation, analogy, British); the last four written blind, from the task list only, by an author
who saw no code or other query set. Each is searched as a user
searches (``LocalService.search``, hybrid, no family filter, k = 5); a hit is any adapter of the
asked task (any seed). Prints R@1 / R@5 per set; ``--out`` writes them with every request's rank and
top three.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
SETS = ("voices", "fresh", "direction", "direction2", "caesar", "broad")


def requests() -> list[tuple[str, str, str]]:
    """(set, task, request) for every request of the three sets."""
    out = []
    voices = json.loads((ROOT / "retrieval_voices.json").read_text())
    for zoo in ("text", "image"):
        for task, said in voices[zoo].items():
            out += [("voices", task, said[v]) for v in voices["voices"] if v in said]
    fresh = json.loads((ROOT / "retrieval_fresh.json").read_text())
    out += [("fresh", task, q) for zoo in ("text", "image") for q, task in fresh[zoo]]
    for name in ("direction", "direction2", "caesar", "broad"):
        written = json.loads((ROOT / f"retrieval_{name}.json").read_text())
        out += [(name, r["task"], r["request"]) for r in written["requests"]]
    return out


def run(home: Path, k: int = 5) -> dict[str, Any]:
    from benchmarks.generation_words import open_home
    from benchmarks.spelling import task_rank

    svc = open_home(home)
    rows = []
    t0 = time.perf_counter()
    for name, task, q in requests():
        hits = svc.search(q, k)
        rank = task_rank(hits, task)
        rows.append({"set": name, "task": task, "request": q, "rank": None if rank is None else rank + 1,
                     "top": [h.adapter["name"] for h in hits[:3]]})  # fmt: skip
    seconds = time.perf_counter() - t0
    summary = {}
    for name in (*SETS, "all"):
        mine = [r for r in rows if name in ("all", r["set"])]
        summary[name] = {"n": len(mine), "recall@1": round(sum(r["rank"] == 1 for r in mine) / len(mine), 3),
                         f"recall@{k}": round(sum(r["rank"] is not None for r in mine) / len(mine), 3)}  # fmt: skip
    svc.close()
    return {"suite": "registry_requests", "home": str(home), "k": k, "seconds": round(seconds, 1),
            "summary": summary, "rows": rows}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.registry_requests", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--home", type=Path, default=Path("/tmp/gw_home"), help="data dir (built when missing)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    res = run(a.home)
    for name, s in res["summary"].items():
        print(f"{name}: " + ", ".join(f"{key} {v}" for key, v in s.items()), flush=True)
    if a.out:
        a.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
