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
who saw no code or other query set. Written blind the same way, later: ``retrieval_voices2.json`` (120 text
zoo requests in six voices: code, spec with inline samples, ESL, texting, kid, roundabout),
``retrieval_looks.json`` (60 image zoo requests in five voices: photo, design, mood, use case, plain; and 30
for the bundled real adapters) and ``retrieval_none.json`` (60 requests no adapter in the registry does,
40 of them near misses: task null); ``retrieval_voices3.json``, ``retrieval_looks2.json`` and
``retrieval_none2.json`` (a second round the same way); ``retrieval_round8a.json`` and ``retrieval_round8b.json``
(a third round, written blind by two helpers and split alternately per group into halves a and b, each with
110 requests for a task of the text zoo, the image zoo or the real adapters, 12 voices for text and 10 for
images, and 40 no adapter does); ``retrieval_round10.json`` (a fourth round the same way, by one helper, in 18
new voices: 125 requests with a task, 45 without) and ``retrieval_round11.json`` (a fifth, by one helper from the
task list only, 17 voices: 110 with a task, 90 without, most of those near misses). Each is searched as a user searches (``LocalService.search``, hybrid,
no family filter, k = 5); a hit is any adapter of the asked task (any seed). Prints R@1 / R@5 per set and
voice, and how often search said "nothing fits": on requests some adapter does (a false alarm) and on the
ones no adapter does (right); ``--out`` writes them with every request's rank and top three.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
# the bundled real adapters a request may name, by their sample file's stem → their name in the registry
SAMPLES = {"ink_sketch_sd2": "ink_sketch_sd2", "neon_glow_flux": "neon_glow_flux", "pixel_art_sdxl": "Pixel Art XL",
           "shakespeare_gpt2": "Shakespeare GPT-2", "sql_helper_llama": "sql_helper_llama",
           "watercolor_sd15": "watercolor_sd15"}  # fmt: skip
SETS = ("voices", "fresh", "direction", "direction2", "caesar", "broad", "voices2", "looks", "none", "voices3",
        "looks2", "none2", "round8a", "round8b", "round10", "round11")  # fmt: skip


def requests() -> list[tuple[str, str | None, str]]:
    """(set, task, request) for every request of every set; task None: no adapter does it."""
    return [(name, task, q) for name, task, q, _ in voiced()]


def voiced() -> list[tuple[str, str | None, str, str]]:
    """(set, task, request, voice) for every request of every set (voice "" where the set has none)."""
    out: list[tuple[str, str | None, str, str]] = []
    voices = json.loads((ROOT / "retrieval_voices.json").read_text())
    for zoo in ("text", "image"):
        for task, said in voices[zoo].items():
            out += [("voices", task, said[v], v) for v in voices["voices"] if v in said]
    fresh = json.loads((ROOT / "retrieval_fresh.json").read_text())
    out += [("fresh", task, q, "") for zoo in ("text", "image") for q, task in fresh[zoo]]
    for name in SETS[2:]:
        written = json.loads((ROOT / f"retrieval_{name}.json").read_text())
        out += [(name, r["task"], r["request"], r.get("voice", "")) for r in written["requests"]]
    return out


def run(home: Path, k: int = 5, sets: tuple[str, ...] = SETS) -> dict[str, Any]:
    from benchmarks.generation_words import open_home
    from benchmarks.spelling import task_rank

    svc = open_home(home)
    rows = []
    t0 = time.perf_counter()
    for name, task, q, voice in voiced():
        if name not in sets:
            continue
        hits = svc.search(q, k)
        rank = None if task is None else task_rank(hits, SAMPLES.get(task, task))
        rows.append({"set": name, "voice": voice, "task": task, "request": q,
                     "rank": None if rank is None else rank + 1, "nothing_fits": hits.nothing_fits,
                     "top": [h.adapter["name"] for h in hits[:3]]})  # fmt: skip
    seconds = time.perf_counter() - t0
    summary = {name: rates([r for r in rows if name in ("all", r["set"])], k) for name in (*sets, "all")}
    by_voice = {
        f"{name}/{v}": rates([r for r in rows if r["set"] == name and r["voice"] == v], k)
        for name in sets
        for v in sorted({r["voice"] for r in rows if r["set"] == name and r["voice"]})
    }
    svc.close()
    return {"suite": "registry_requests", "home": str(home), "k": k, "seconds": round(seconds, 1),
            "summary": summary, "by_voice": by_voice, "rows": rows}  # fmt: skip


def rates(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """R@1 / R@k over the requests some adapter does, and how often search said nothing fits: on
    those (a false alarm) and on the requests no adapter does (task None: the right answer)."""
    asked = [r for r in rows if r["task"] is not None]
    none = [r for r in rows if r["task"] is None]
    out: dict[str, Any] = {"n": len(asked)}
    if asked:
        out["recall@1"] = round(sum(r["rank"] == 1 for r in asked) / len(asked), 3)
        out[f"recall@{k}"] = round(sum(r["rank"] is not None for r in asked) / len(asked), 3)
        out["nothing_fits_said"] = round(sum(bool(r["nothing_fits"]) for r in asked) / len(asked), 3)
    if none:
        out["n_no_adapter"] = len(none)
        out["nothing_fits_on_no_adapter"] = round(sum(bool(r["nothing_fits"]) for r in none) / len(none), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.registry_requests", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--home", type=Path, default=Path("/tmp/gw_home"), help="data dir (built when missing)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    a = p.parse_args(argv)
    unknown = [s for s in a.sets.split(",") if s not in SETS]
    if unknown:
        p.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    res = run(a.home, sets=tuple(a.sets.split(",")))
    for name, s in res["summary"].items():
        print(f"{name}: " + ", ".join(f"{key} {v}" for key, v in s.items()), flush=True)
    for name, s in res["by_voice"].items():
        print(f"  {name}: " + ", ".join(f"{key} {v}" for key, v in s.items()), flush=True)
    if a.out:
        a.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
