"""Search with spelling slips: one typo per query, with and without ``loradex.spelling``.

    python -m benchmarks.spelling [--home /tmp/gw_home] [--out benchmarks/results/spelling.json]

Every query of ``retrieval_voices.json`` (both zoos, every voice, training and held-out tasks) is
searched on the default registry (``ui.server.prepare``: samples + both zoos, text map fitted) as
written and with one slip in one word of five letters or more (seeded: two neighbours swapped, a
letter dropped or doubled), with the speller on and off (``Searcher.speller`` returning None), in one
process. A hit is right when it is one of the task's adapters (any seed). Reports MRR and R@1 over
the top 10. The slips are synthetic, the queries are the voices' as written: nothing was tuned on them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def slip(query: str, rng: random.Random) -> str:
    """``query`` with one typo in one of its words of five letters or more (unchanged when it has none)."""
    words = [w for w in re.findall(r"[A-Za-z]+", query) if len(w) >= 5]
    if not words:
        return query
    w = rng.choice(words)
    i = rng.randrange(1, len(w) - 2)
    kind = rng.choice(("swap", "drop", "double"))
    t = {"swap": w[:i] + w[i + 1] + w[i] + w[i + 2 :], "drop": w[:i] + w[i + 1 :], "double": w[:i] + w[i] + w[i:]}[kind]
    return re.sub(rf"\b{w}\b", t, query, count=1)


def task_rank(hits: Any, task: str) -> int | None:
    """The rank of the first of ``task``'s adapters (any seed: ``task``, ``task_s1`` …) among ``hits``, or None."""
    for r, h in enumerate(hits):
        name = str(h.adapter["name"])
        if name == task or name.startswith(f"{task}-") or name.startswith(f"{task}_s"):
            return r
    return None


def rank_of(svc: Any, query: str, task: str, k: int = 10) -> int | None:
    return task_rank(svc.search(query, k=k), task)


def run(home: Path, seed: int = 0) -> dict[str, Any]:
    from benchmarks.generation_words import open_home

    svc = open_home(home)
    voices = json.loads((REPO / "benchmarks" / "retrieval_voices.json").read_text())
    rng = random.Random(seed)
    rows = [{"zoo": zoo, "task": task, "voice": voice, "query": q}
            for zoo in ("text", "image") for task, by in voices[zoo].items() for voice, q in by.items()]  # fmt: skip
    for r in rows:
        r["slipped"] = slip(r["query"], rng)
    own = svc.searcher.speller
    for setting in ("on", "off"):
        svc.searcher.speller = own if setting == "on" else (lambda: None)  # type: ignore[method-assign]
        for r in rows:
            r[f"clean_{setting}"] = rank_of(svc, r["query"], r["task"])
            r[f"slipped_{setting}"] = rank_of(svc, r["slipped"], r["task"])
    svc.searcher.speller = own  # type: ignore[method-assign]
    speller = own()
    for r in rows:
        r["read"] = speller.correct(r["slipped"]) if speller else r["slipped"]

    def agg(key: str, rs: list[dict[str, Any]]) -> dict[str, float]:
        ranks = [r[key] for r in rs]
        return {"mrr": round(sum(1 / (x + 1) for x in ranks if x is not None) / len(rs), 3),
                "r1": round(sum(x == 0 for x in ranks) / len(rs), 3)}  # fmt: skip

    summary = {}
    for zoo in ("all", "text", "image"):
        rs = [r for r in rows if zoo in ("all", r["zoo"])]
        summary[zoo] = {key: agg(key, rs) for key in ("clean_off", "clean_on", "slipped_off", "slipped_on")}
        summary[zoo]["queries"] = len(rs)  # type: ignore[assignment]
    return {"seed": seed, "summary": summary, "rows": rows}


def to_markdown(res: dict[str, Any]) -> str:
    lines = ["| zoo | queries | as written, speller off → on (MRR / R@1) | one slip, speller off → on (MRR / R@1) |",
             "|---|---|---|---|"]  # fmt: skip
    for zoo, s in res["summary"].items():
        c0, c1, s0, s1 = (s[k] for k in ("clean_off", "clean_on", "slipped_off", "slipped_on"))
        lines.append(f"| {zoo} | {s['queries']} | {c0['mrr']} / {c0['r1']} → **{c1['mrr']} / {c1['r1']}** | "
                     f"{s0['mrr']} / {s0['r1']} → **{s1['mrr']} / {s1['r1']}** |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.spelling", description=__doc__)
    p.add_argument("--home", type=Path, default=Path("/tmp/gw_home"), help="data dir (built when missing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "spelling.json")
    args = p.parse_args(argv)
    res = run(args.home, args.seed)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(to_markdown(res))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
