"""Zoo data for the generation benchmark: training items, evaluation queries, and the training run.

``python -m benchmarks.generation train text|image`` trains every generator method of a zoo on
its TRAINING tasks (all seeds; canonical description + training paraphrases; held-out tasks and
held-out paraphrases never enter) and writes ``generators/checkpoints/<family>/<method>/``.

The evaluation queries (``benchmarks/generation_queries.json``) are made by ``queries()`` from
the manifests, in several voices: the zoo's held-out paraphrases (everyday wording), terse
keywords, the canonical description of held-out tasks, and (text) examples of the
transformation written as a description. They were written before any generator was tuned.
The image zoo also has a hand-written "user" voice (``USER_VOICE``), added with the image run.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ZOOS = {"text": REPO / "benchmarks" / "zoo" / "text", "image": REPO / "benchmarks" / "zoo" / "image"}
FAMILIES = {"text": "zoo-text", "image": "zoo-image"}
CHECKPOINTS = REPO / "generators" / "checkpoints"
QUERIES = REPO / "benchmarks" / "generation_queries.json"
METHODS = ("nearest", "topk_mean", "mean_all", "analogy", "hypernet", "semantic", "cvae")
N_TRAIN_EXAMPLES = 8  # (input, output) pairs stored per training task (text), drawn away from eval inputs
# pairs per task for end-to-end objectives (the first 8 are the ones above; only those are embedded)
N_E2E_EXAMPLES = 256
# Per-zoo training recipes (chosen before the evaluation queries were run). semantic and cvae keep
# their network in float16; their widths are the largest that keep each checkpoint under 10 MB
# (semantic also stores the expert library, about 8 MB on text and 6.8 MB on image).
RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "text": {
        # end to end through the frozen text base (chosen on validation over reconstruction and five
        # other end-to-end settings; benchmarks/results/generation_notes.md, 2026-12-04)
        "hypernet": {
            "steps": 5000,
            "batch_size": 16,
            "width": 128,
            "emb_noise": 0.05,
            "lr": 0.005,
            "objective": "end_to_end",
            "task_examples": 8,
            "text_map_steps": 300,
        },
        "semantic": {"steps": 600, "batch_size": 16, "width": 64, "contexts": 4},
        "cvae": {"steps": 1500, "batch_size": 32, "width": 96, "emb_noise": 0.05},
    },
    "image": {
        "hypernet": {"steps": 800, "batch_size": 16, "width": 96, "emb_noise": 0.05},
        "semantic": {"steps": 400, "batch_size": 8, "width": 24, "contexts": 2},
        "cvae": {"steps": 800, "batch_size": 16, "width": 64, "emb_noise": 0.05},
    },
}


def manifest(zoo: str) -> dict[str, Any]:
    return json.loads((ZOOS[zoo] / "manifest.json").read_text())  # type: ignore[no-any-return]


def weights_path(zoo: str, rel: str) -> Path:
    p = ZOOS[zoo] / rel
    return p if zoo == "text" else p / "pytorch_lora_weights.safetensors"


def text_tasks() -> dict[str, Any]:
    from benchmarks.zoo.text.tasks import all_tasks

    return {t.id: t for t in all_tasks()}


def train_examples(task: Any, n: int = N_TRAIN_EXAMPLES) -> list[tuple[str, str]]:
    """Seeded training examples of a text task, never one of its evaluation inputs."""
    from benchmarks.zoo.text.evaluate import N_EVAL, eval_inputs

    rng = random.Random(f"gen-train-examples-{task.id}")
    seen = set(eval_inputs(task, N_EVAL))
    out = []
    while len(out) < n:
        s = task.sample_input(rng, exclude=seen)
        seen.add(s)
        out.append((s, task.apply(s)))
    return out


def query_examples(task: Any, n: int = 3) -> list[tuple[str, str]]:
    """The in-context examples a user gives for a task at evaluation (not eval inputs, not training ones)."""
    from benchmarks.zoo.text.evaluate import N_EVAL, eval_inputs

    rng = random.Random(f"gen-query-examples-{task.id}")
    seen = set(eval_inputs(task, N_EVAL)) | {s for s, _ in train_examples(task)}
    out = []
    while len(out) < n:
        s = task.sample_input(rng, exclude=seen)
        seen.add(s)
        out.append((s, task.apply(s)))
    return out


def train_items(zoo: str, n_examples: int = N_TRAIN_EXAMPLES) -> list[Any]:
    """Every adapter of every training task, with training texts only (text: ``n_examples`` examples
    per task; the first N_TRAIN_EXAMPLES are the same whatever ``n_examples``)."""
    from generators import TrainItem
    from registry.formats import read_adapter

    tasks = text_tasks() if zoo == "text" else {}
    items = []
    for t in manifest(zoo)["tasks"]:
        if t["split"] != "train":
            continue
        texts = [t["canonical"]] + [p["text"] for p in t["paraphrases"] if p["split"] == "train"]
        ex = train_examples(tasks[t["id"]], n_examples) if zoo == "text" else []
        for a in t["adapters"]:
            name = a["path"].rsplit("/", 1)[-1]
            items.append(TrainItem(name, read_adapter(weights_path(zoo, a["path"])), texts, t["id"], ex))
    return items


def train(zoo: str, methods: tuple[str, ...] = METHODS, out_root: Path = CHECKPOINTS) -> dict[str, Any]:
    """Train each method for the zoo's family; returns per-method results (time, size, metrics)."""
    import time

    import torch

    from encoders.text import get_text_encoder
    from generators import train_generator
    from generators.base import prepare

    torch.set_num_threads(1)  # small ops: one thread is faster than two contended ones on this machine
    t0 = time.perf_counter()
    e2e = [m for m in methods if RECIPES[zoo].get(m, {}).get("objective") == "end_to_end"]
    items = train_items(zoo, N_E2E_EXAMPLES if e2e else N_TRAIN_EXAMPLES)
    task_model = None
    if e2e:
        from benchmarks.zoo.plugins import load_zoo_text

        task_model = load_zoo_text()  # the frozen base the end-to-end loss runs through
    text_encoder = get_text_encoder()
    data = prepare(items, text_encoder)  # canonical params and embeddings, shared by every method
    read_s = time.perf_counter() - t0
    out: dict[str, Any] = {"prepare_seconds": round(read_s, 1), "items": len(items)}
    for m in methods:
        folder = out_root / FAMILIES[zoo] / m

        def progress(i: int, n: int, m: str = m) -> None:
            if i == n or i % 200 == 0:
                print(f"  {zoo}/{m}: {i}/{n}", flush=True)

        res = train_generator(m, FAMILIES[zoo], items, folder, config=RECIPES[zoo].get(m), progress=progress,
                              text_encoder=text_encoder, prepared=data, task_model=task_model)  # fmt: skip
        size = sum(f.stat().st_size for f in folder.iterdir())
        out[m] = {"seconds": round(res["seconds"], 1), "bytes": size, "version": res["version"]}
        print(f"{zoo}/{m}: {res['seconds']:.0f} s, {size / 1e6:.2f} MB, version {res['version']}", flush=True)
    out["total_seconds"] = round(time.perf_counter() - t0, 1)
    return out


# -- evaluation queries -------------------------------------------------------------------------
# The "user" voice (image zoo): how a person might type the request, written by hand for issue 12's
# image run before any semantic / cvae image figure was seen, and never part of any training text.
USER_VOICE: dict[str, dict[str, str]] = {
    "image": {
        # held-out tasks
        "duotone_grid": "pink and teal two colour look, with a grid over it like graph paper",
        "grayscale_diagonal": "black & white but with slanted stripes",
        "grayscale_dots": "no colour, just greys, and cover it in little dots",
        "grayscale_noise": "old grainy b/w film",
        "grayscale_waves": "grey only, with wiggly lines all over",
        "matrix_checker": "hacker green screen vibe with a chessboard pattern",
        "night_grid": "make it look like it's at night and put a grid of lines on it",
        "night_hstripes": "dark blue night colours, horizontal lines across",
        "night_waves": "nighttime darkness plus wavy squiggles",
        "sepia_hstripes": "old brownish photo with horizontal lines",
        "sepia_vstripes": "antique brown photo look with up-and-down stripes",
        "thermal_dots": "heat vision camera colours, polka dot pattern",
        # training tasks asked as unseen paraphrases
        "grayscale": "take all the colour out",
        "pastel": "soft candy colours, light and faded",
        "matrix": "green text terminal look",
        "diagonal": "slanted lines across everything",
        "noise": "add static / tv snow",
        "crescent": "draw a moon shaped like a banana",
        "grayscale_hstripes": "b/w with horizontal lines",
        "sepia_checker": "vintage brown photo on a checkerboard",
        "night_dots": "dark night colours with spots",
        "thermal_grid": "infrared heat map colours plus a grid",
        "cyanotype_vstripes": "blueprint blue with vertical bars",
        "cyanotype_waves": "blue sun-print look with wavy lines",
        "matrix_dots": "green computer screen style with polka dots",
        "duotone_diagonal": "teal/pink two-tone with diagonal stripes",
    }
}


def _terse(tid: str) -> str:
    return tid.replace("__then__", " then ").replace("_", " ")


def queries() -> dict[str, Any]:
    """Evaluation queries per zoo and split (see the module docstring)."""
    doc: dict[str, Any] = {}
    for zoo in ZOOS:
        tasks = manifest(zoo)["tasks"]
        train_ids = [t["id"] for t in tasks if t["split"] == "train"]
        probe = set(train_ids[::4])  # every 4th training task is asked with unseen phrasings
        rows = []
        ttasks = text_tasks() if zoo == "text" else {}
        for t in tasks:
            held_paras = [p["text"] for p in t["paraphrases"] if p["split"] == "heldout"]
            if t["split"] == "heldout":
                qs = [("canonical", t["canonical"])] + [("everyday", p) for p in held_paras[:2]]
                qs.append(("terse", _terse(t["id"])))
                if t["id"] in USER_VOICE.get(zoo, {}):
                    qs.append(("user", USER_VOICE[zoo][t["id"]]))
                if zoo == "text":
                    ex = query_examples(ttasks[t["id"]])
                    qs.append(("examples", "; ".join(f"{a} -> {b}" for a, b in ex)))
                for voice, q in qs:
                    rows.append({"task": t["id"], "split": "heldout_task", "voice": voice, "query": q})
            elif t["id"] in probe and len(held_paras) >= 2:
                rows.append({"task": t["id"], "split": "validation", "voice": "everyday", "query": held_paras[0]})
                rows.append(
                    {"task": t["id"], "split": "unseen_paraphrase", "voice": "everyday", "query": held_paras[1]}
                )
                rows.append({"task": t["id"], "split": "unseen_paraphrase", "voice": "terse", "query": _terse(t["id"])})
                if t["id"] in USER_VOICE.get(zoo, {}):
                    rows.append({"task": t["id"], "split": "unseen_paraphrase", "voice": "user",
                                 "query": USER_VOICE[zoo][t["id"]]})  # fmt: skip
        doc[zoo] = rows
    doc["junk"] = ["lorem ipsum dolor sit amet", "asdf qwerty zxcv", "the the the the", "banana telephone purple"]
    return doc


def load_queries() -> dict[str, Any]:
    return json.loads(QUERIES.read_text())  # type: ignore[no-any-return]
