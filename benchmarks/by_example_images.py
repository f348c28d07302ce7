"""Suite ``by_example_images``: search by example picture on the image zoo (issue 15), with the
zoo's registered judge and with the default training-free ``STYLE`` descriptor, in the same run.

    python -m benchmarks.by_example_images [--out FILE.json] [--md FILE.md]

The image zoo is ingested into a fresh registry (previews cached in its home). Per task, the user's
example pictures are its adapter's renders (seed 0 of the task) of content prompts no preview draws
(``EXAMPLE_SCENES``: other base shapes, colours and backgrounds; a new-shape task's own shape), as
someone would show a picture in the look they want. Queries: one picture, and three. A hit is an
adapter of the task (any seed). Splits: training and held-out tasks (held out: no encoder or
generator trained on their descriptions; their adapters are in the registry like the others).
"Nothing fits" is measured on the tasks' pictures (a false alarm) and on the bare base's pictures of
the same prompts (right). Latency: the first search (it renders every candidate's preview once:
``first_s``) and the p50 of the others (previews read from the cache), judge by judge.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.retrieval import adapter_tasks
from benchmarks.spelling import task_rank

ZOO_IMAGE = Path(__file__).resolve().parent / "zoo" / "image"
EXAMPLE_SCENES = (("cross", "purple", "black"), ("ring", "orange", "teal"), ("cross", "pink", "navy"))
K = 5


def _png(image: Any) -> bytes:
    import numpy as np
    from PIL import Image

    arr = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H, W, 3)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def example_prompts(task: dict[str, Any]) -> list[str]:
    from benchmarks.zoo.image.captions import caption
    from benchmarks.zoo.image.shapes import Scene

    shape = task["params"].get("shape")
    return [caption(Scene(shape or s, c, b)) for s, c, b in EXAMPLE_SCENES]


def pictures(svc: Any, manifest: dict[str, Any]) -> dict[str, tuple[list[bytes], list[bytes]]]:
    """task → (its adapter's example pictures, the bare base's of the same prompts)."""
    out = {}
    for task in manifest["tasks"]:
        folder = task["adapters"][0]["path"].rsplit("/", 1)[-1]
        base, styled = svc.previews.images(svc.registry, svc.get(folder), example_prompts(task))
        out[task["id"]] = ([_png(x) for x in styled], [_png(x) for x in base])
    return out


def run(out_json: Path | None, out_md: Path | None) -> dict[str, Any]:
    from loradex import LocalService
    from loradex.judges import STYLE, image_judge, register_image_judge

    manifest = json.loads((ZOO_IMAGE / "manifest.json").read_text())
    tasks = {t["id"]: t for t in manifest["tasks"]}
    with tempfile.TemporaryDirectory(prefix="by_image_") as d:
        svc = LocalService.open(Path(d) / "home", embed=False)
        t0 = time.perf_counter()
        svc.ingest([ZOO_IMAGE / "adapters"])
        folder_task = adapter_tasks(manifest)
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        shown = pictures(svc, manifest)
        examples_s = time.perf_counter() - t0
        registered = image_judge("zoo-image")
        rows: list[dict[str, Any]] = []
        latency: dict[str, list[float]] = {}
        first: dict[str, float] = {}
        for judge in (registered, STYLE):
            register_image_judge("zoo-image", judge, replace=True)
            for tid, (styled, plain) in shown.items():
                for n_pics in (1, 3):
                    for kind, pics in (("task", styled[:n_pics]), ("base", plain[:n_pics])):
                        t0 = time.perf_counter()
                        hits = svc.search("", K, images=pics, family="zoo-image")
                        took = time.perf_counter() - t0
                        if judge.name not in first:
                            first[judge.name] = took  # every candidate's preview rendered once
                        else:
                            latency.setdefault(judge.name, []).append(took)
                        rank = task_rank(hits, tid) if kind == "task" else None
                        rows.append({"judge": judge.name, "task": tid, "family": tasks[tid]["family"],
                                     "split": tasks[tid]["split"], "pictures": n_pics, "of": kind,
                                     "rank": None if rank is None else rank + 1, "nothing_fits": hits.nothing_fits,
                                     "top": [h.adapter["name"] for h in hits[:3]]})  # fmt: skip
        register_image_judge("zoo-image", registered, replace=True)
        candidates = len(svc.list(family="zoo-image"))
    summary = summarise(rows)
    doc = {"suite": "by_example_images", "zoo": str(ZOO_IMAGE.relative_to(ZOO_IMAGE.parents[2])),
           "tasks": len(tasks), "adapters": len(folder_task), "candidates": candidates, "k": K,
           "example_scenes": EXAMPLE_SCENES, "ingest_s": ingest_s, "examples_render_s": examples_s,
           "first_search_s": first,
           "p50_s": {j: statistics.median(v) for j, v in latency.items()},
           "p90_s": {j: statistics.quantiles(v, n=10)[-1] for j, v in latency.items() if len(v) > 1},
           "summary": summary, "rows": rows}  # fmt: skip
    if out_json:
        out_json.write_text(json.dumps(doc, indent=1) + "\n")
    if out_md:
        out_md.write_text(markdown(doc))
    print(markdown(doc))
    return doc


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per judge, pictures, split and task family: R@1, R@5, the false-alarm and base no-fit rates."""
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        for split in (r["split"], "all"):
            for fam in (r["family"], "all"):
                groups.setdefault((r["judge"], r["pictures"], split, fam), []).append(r)
    out = []
    for (judge, n, split, fam), rs in sorted(groups.items()):
        mine = [r for r in rs if r["of"] == "task"]
        plain = [r for r in rs if r["of"] == "base"]
        out.append({"judge": judge, "pictures": n, "split": split, "family": fam, "queries": len(mine),
                    "recall@1": sum(r["rank"] == 1 for r in mine) / len(mine),
                    f"recall@{K}": sum(r["rank"] is not None for r in mine) / len(mine),
                    "nothing_fits_on_task": sum(bool(r["nothing_fits"]) for r in mine) / len(mine),
                    "nothing_fits_on_base": sum(bool(r["nothing_fits"]) for r in plain) / max(len(plain), 1),
                    "untold_on_task": sum(r["nothing_fits"] is None for r in mine) / len(mine),
                    "untold_on_base": sum(r["nothing_fits"] is None for r in plain) / max(len(plain), 1)})  # fmt: skip
    return out


def markdown(doc: dict[str, Any]) -> str:
    lines = ["# by_example_images", "",
             f"{doc['tasks']} image zoo tasks ({doc['adapters']} adapters, all {doc['candidates']} rendered as "
             f"candidates), k = {doc['k']}; example pictures: each task's adapter on {len(doc['example_scenes'])} "
             "content prompts no preview draws. First search (renders every preview once): "
             + ", ".join(f"{j}: {s:.1f} s" for j, s in doc["first_search_s"].items()) + "; after it, p50 "
             + ", ".join(f"{j}: {s:.3f} s" for j, s in doc["p50_s"].items()) + ".", "",
             "| judge | pictures | split | family | queries | R@1 | R@5 | nothing fits: task's pictures "
             "(false alarm) | nothing fits: bare base's pictures | cannot tell: task's / base's |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in doc["summary"]:
        lines.append(f"| {s['judge']} | {s['pictures']} | {s['split']} | {s['family']} | {s['queries']} | "
                     f"{s['recall@1']:.3f} | {s[f'recall@{K}']:.3f} | {s['nothing_fits_on_task']:.3f} | "
                     f"{s['nothing_fits_on_base']:.3f} | {s['untold_on_task']:.3f} / {s['untold_on_base']:.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def suite_by_example_images(args: argparse.Namespace) -> dict[str, Any]:
    """``python -m benchmarks.run by_example_images``: the summary as the harness's rows."""
    if not (ZOO_IMAGE / "manifest.json").is_file():
        return {"missing": f"{ZOO_IMAGE} has no manifest.json: python -m benchmarks.zoo build image"}
    doc = run(None, None)
    return {**{k: v for k, v in doc.items() if k not in ("rows", "summary")}, "rows": doc["summary"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None, help="JSON with every query's rank and top three")
    p.add_argument("--md", type=Path, default=None, help="the summary table as Markdown")
    args = p.parse_args(argv)
    run(args.out, args.md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
