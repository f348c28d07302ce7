"""Does ``generate`` do better when the registry's search picks the expert a generator answers with?

    python -m benchmarks.generation_pick [--home /tmp/gw_home] [--out benchmarks/results/generation_pick.json]

When a generator answers a request with one library expert as is (``nearest``; ``analogy`` when no
triple beats the nearest expert), ``loradex.generation.search_pick`` makes it the adapter the
registry's hybrid search ranks first among the family's ingested ones (``Generator.picked``): a
library expert, or one outside the generator's library (the default registry holds the zoos'
held-out tasks' adapters, which no generator was trained on), which also replaces an answer that
blends several experts (an analogy), never a chain of steps. Measured on every query of
``generation_queries.json`` and ``retrieval_voices.json`` for both zoos, through the default
generator: for training tasks, how often the answer is the task's own adapter alone (or one of its
extra seeds), without and with the pick; for held-out tasks (no expert of their own in the library)
how often the pick changes the answer and how often the answer becomes the task's own adapter.
Every changed answer is judged both ways by the zoo's own evaluator (text: exact match on 50
strings; image: mean of style hit and content kept on 6 prompts). Nothing is tuned here: the pick
has no threshold. A missing home is built first (``ui.server.prepare``).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FAMILIES = {"text": "zoo-text", "image": "zoo-image"}


def queries(zoo: str) -> list[dict[str, Any]]:
    """Every query of both files for ``zoo``: text, task, split (train / heldout), source."""
    from benchmarks.generation_data import QUERIES, manifest

    split = {t["id"]: ("train" if t["split"] == "train" else "heldout") for t in manifest(zoo)["tasks"]}
    out = [{"text": q["query"], "task": q["task"], "split": split[q["task"]], "source": f"queries:{q['split']}"}
           for q in json.loads(QUERIES.read_text())[zoo] if q["task"] in split]  # fmt: skip
    voices = json.loads((REPO / "benchmarks" / "retrieval_voices.json").read_text())[zoo]
    out += [{"text": text, "task": task, "split": split[task], "source": f"voice:{voice}"}
            for task, by_voice in voices.items() if task in split for voice, text in by_voice.items()]  # fmt: skip
    return out


def measure(svc: Any, zoo: str) -> list[dict[str, Any]]:
    """Per query: the generator's experts without and with the search's pick."""
    from loradex.generation import load, pick, search_pick
    from loradex.search import readable_for

    family = FAMILIES[zoo]
    _, entry = pick(svc, family, None)
    gen = load(svc, entry["path"])
    rows, judged = [], []
    for q in queries(zoo):
        asked = readable_for(svc.text_encoder, q["text"])
        top = search_pick(svc, family, gen, asked)
        a, b = gen.generate(asked, seed=0), gen.generate(asked, seed=0, expert=top)
        alone = [e["name"] for e in a.lineage.get("experts") or []]
        picked = [e["name"] for e in b.lineage.get("experts") or []]
        rows.append({**q, "search_top": top.name if top else None, "outside_library": bool(top and top.adapter),
                     "alone": alone, "picked": picked})  # fmt: skip
        if alone != picked:  # judged by the zoo's own evaluator, as the generation suite does
            judged.append((len(rows) - 1, a.adapter, b.adapter))
    if judged:
        metric = judge_changed(zoo, [(rows[i]["task"], x, y) for i, x, y in judged])
        for (i, _, _), m in zip(judged, metric, strict=True):
            rows[i]["metric_alone"], rows[i]["metric_picked"] = m
    return rows


def judge_changed(zoo: str, items: list[tuple[str, Any, Any]]) -> list[tuple[float, float]]:
    """(task, adapter without the pick, with it) → the task metric of each: exact match (text, 50
    strings) or style hit × content kept's mean halves (image: (style + content) / 2, 6 prompts)."""
    from benchmarks.generation_judges import ImageJudge, TextJudge

    ev = [(t, x) for t, x, _ in items] + [(t, y) for t, _, y in items]
    if zoo == "text":
        acc = TextJudge(n=50).accuracy(ev)
    else:
        acc = [(float(r["style_hit"]) + float(r["content_kept"])) / 2 for r in ImageJudge().scores(ev)]
    k = len(items)
    return list(zip(acc[:k], acc[k:], strict=True))


def own(name: str | None, task: str) -> bool:
    """``name`` is the task's adapter or one of its extra seeds (``task_s1`` …)."""
    return name is not None and re.fullmatch(re.escape(task) + r"(_s\d+)?", name) is not None


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source in ["all", *sorted({r["source"] for r in rows})]:
        rs = [r for r in rows if source in ("all", r["source"])]
        tr = [r for r in rs if r["split"] == "train"]
        ho = [r for r in rs if r["split"] == "heldout"]
        out[source] = {
            "train": len(tr),
            "own_alone": sum(len(r["alone"]) == 1 and own(r["alone"][0], r["task"]) for r in tr),
            "own_picked": sum(len(r["picked"]) == 1 and own(r["picked"][0], r["task"]) for r in tr),
            "search_top_own": sum(own(r["search_top"], r["task"]) for r in tr),
            "heldout": len(ho),
            "heldout_changed": sum(r["alone"] != r["picked"] for r in ho),
            # the registry holds held-out tasks' own adapters (outside the generator's library)
            "heldout_own_picked": sum(len(r["picked"]) == 1 and own(r["picked"][0], r["task"]) for r in ho),
            "heldout_search_top_own": sum(own(r["search_top"], r["task"]) for r in ho),
            "picked_outside_library": sum(r["outside_library"] and r["alone"] != r["picked"] for r in rs),
        }
        for name, group in (("train", tr), ("heldout", ho)):
            ch = [r for r in group if "metric_alone" in r]
            out[source][f"{name}_metric_sum_alone"] = round(sum(r["metric_alone"] for r in ch), 3)
            out[source][f"{name}_metric_sum_picked"] = round(sum(r["metric_picked"] for r in ch), 3)
    return out


def run(home: Path) -> dict[str, Any]:
    from benchmarks.generation_words import open_home

    svc = open_home(home)
    out: dict[str, Any] = {}
    for zoo in FAMILIES:
        rows = measure(svc, zoo)
        out[zoo] = {"summary": summary(rows), "rows": rows}
    return out


def to_markdown(res: dict[str, Any]) -> str:
    lines = ["| zoo | queries | training-task queries | own expert: generator alone | own expert: with the pick | "
             "search top is own | task metric summed over changed answers, training: alone → picked | held-out "
             "queries | held-out answers changed | their task metric summed: alone → picked | held-out: own "
             "adapter answers (search top is own) | answers from outside the library |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for zoo, z in res.items():
        for src, s in z["summary"].items():
            lines.append(f"| {zoo} | {src} | {s['train']} | {s['own_alone']} | **{s['own_picked']}** | "
                         f"{s['search_top_own']} | {s['train_metric_sum_alone']} → {s['train_metric_sum_picked']} | "
                         f"{s['heldout']} | {s['heldout_changed']} | {s['heldout_metric_sum_alone']} → "
                         f"{s['heldout_metric_sum_picked']} | {s['heldout_own_picked']} "
                         f"({s['heldout_search_top_own']}) | {s['picked_outside_library']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.generation_pick", description=__doc__)
    p.add_argument("--home", type=Path, default=Path("/tmp/gw_home"), help="data dir (built when missing)")
    p.add_argument("--out", type=Path, default=RESULTS / "generation_pick.json")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    res = run(args.home)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(to_markdown(res))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
