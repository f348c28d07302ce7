"""The ``fusion`` benchmark suite, and the one command that trains the committed gates.

    python -m benchmarks.run fusion [--quick]          # results → benchmarks/results/fusion.{json,md,png}
    python -m benchmarks.fusion train image|text       # gate → fusion/checkpoints/zoo-image|zoo-text
                                                       # (image: --method calibrated (default) | autolora)

Image zoo (judge = the zoo's classifier; prompts = the zoo's content captions, seeds = its
evaluation seeds; the gate routes by the combo's own paraphrases, which the zoo wrote before
this suite existed): every held-out palette × texture combo composed from its palette adapter
and its texture adapter, by each method; shape + palette + texture triples; k = 2, 4, 8 adapters
loaded with seeded random distractors. The training-free gate's threshold and g_max are chosen on training combos (the
validation split) and reported on the held-out combos. Text zoo: k single-task adapters loaded,
the task named by a held-out paraphrase; two-step tasks from their one-step adapters.
Exactness and cost rows need no zoo.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
IMAGE_ZOO = REPO / "benchmarks" / "zoo" / "image"
TEXT_ZOO = REPO / "benchmarks" / "zoo" / "text"
RESULTS = REPO / "benchmarks" / "results"
STEPS = 10  # DDIM steps of every image row (the zoo's own evaluation uses 20; oracle rows are re-measured here)
GUIDANCE = 4.0  # the zoo's guidance scale
MERGES = ("svd", "ties", "dare_ties", "magnitude_prune", "lego")  # cat == linear exactly (same ΔW sum)
N_COMBOS = 6  # held-out combos measured (every other one of the 12 in manifest order: CPU time on a shared machine)
GATE_GRID = [(t, g) for t in (0.2, 0.3, 0.4) for g in (0.7, 1.0)]  # (threshold, g_max) tried on validation combos


# ------------------------------------------------------------------------------ image zoo
class ImageZoo:
    def __init__(self) -> None:
        from benchmarks.zoo.image.classifiers import load_classifier
        from benchmarks.zoo.image.model import load_base

        self.pipe = load_base(IMAGE_ZOO / "base")
        self.judge = load_classifier(IMAGE_ZOO / "classifiers")
        self.manifest = json.loads((IMAGE_ZOO / "manifest.json").read_text())
        self.tasks = {t["id"]: t for t in self.manifest["tasks"]}
        self._cache: dict[str, Any] = {}

    def adapter(self, tid: str) -> Any:
        from registry.formats import read_adapter

        if tid not in self._cache:
            path = IMAGE_ZOO / self.tasks[tid]["adapters"][0]["path"]
            a = read_adapter(path / "pytorch_lora_weights.safetensors")
            a.description = self.tasks[tid]["canonical"]
            self._cache[tid] = a
        return self._cache[tid]

    def requests(self, tid: str, n: int) -> list[str]:
        """Paraphrases of a task as requests (held-out ones first)."""
        ps = sorted(self.tasks[tid]["paraphrases"], key=lambda p: p["split"] != "heldout")
        return [p["text"] for p in ps][:n]

    def scenes(self, n: int, shape: str | None = None) -> tuple[list[str], list[int], list[Any]]:
        from benchmarks.zoo.image.captions import AdapterSpec, caption
        from benchmarks.zoo.image.evaluate import eval_scenes, eval_seeds

        spec = AdapterSpec(shape, "shape", shape=shape) if shape else None
        sc = eval_scenes(spec, n)
        return [caption(s) for s in sc], eval_seeds(n), sc

    def judge_rows(self, images: torch.Tensor, scenes: list[Any], want: dict[str, str]) -> dict[str, float]:
        from benchmarks.zoo.image.classifiers import predict

        pred = predict(self.judge, images)
        n = len(scenes)
        hits = {k: [pred[k][i] == v for i in range(n)] for k, v in want.items()}
        all_ok = [all(hits[k][i] for k in want) for i in range(n)]
        if "shape" in want:  # the new shape is asked for: content is the prompt's colour
            kept = [pred["colour"][i] == s.colour for i, s in enumerate(scenes)]
        else:
            kept = [pred["shape"][i] == s.shape for i, s in enumerate(scenes)]
        out = {f"hit_{k}": sum(v) / n for k, v in hits.items()}
        out["all"] = sum(all_ok) / n
        out["requested_rate"] = sum(sum(v) for v in hits.values()) / (n * len(want))
        out["content_kept"] = sum(kept) / n
        return out


def _method(zoo: ImageZoo, ids: list[str], method: str, prompts: list[str], seeds: list[int], request: str,
            gate_dir: Any = None, knobs: tuple[float, float] | None = None) -> torch.Tensor:  # fmt: skip
    """Images (n, 3, 32, 32) of one method."""
    from fusion.compose import compose_images

    ads = [zoo.adapter(i) for i in ids]
    kw: dict[str, Any] = {"steps": STEPS, "guidance": GUIDANCE, "seeds": seeds, "names": ids}
    if method.startswith("alone:"):
        kw["names"] = [method[6:]]
        return compose_images(zoo.pipe, [zoo.adapter(method[6:])], prompts, strategy="linear", **kw).tensor  # type: ignore[return-value]
    if method in ("gate", "gate_free"):
        d = gate_dir
        if knobs is not None:
            import tempfile

            from fusion.gate.config import GateConfig

            d = tempfile.mkdtemp(prefix="fusion-gate-")
            GateConfig(kind="image", family="zoo-image", threshold=knobs[0], g_max=knobs[1]).save(d)
        return compose_images(zoo.pipe, ads, prompts, strategy="gate", request=request, gate_dir=d, **kw).tensor  # type: ignore[return-value]
    strategy = f"merge:{method}" if method in MERGES else method
    return compose_images(zoo.pipe, ads, prompts, strategy=strategy, **kw).tensor  # type: ignore[return-value]


def _avg(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys()
    return {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in keys}


def heldout_combos(zoo: ImageZoo, split: str) -> list[str]:
    return [t["id"] for t in zoo.manifest["tasks"] if t["family"] == "combo" and t["split"] == split]


def image_suite(zoo: ImageZoo, n: int, n_combos: int | None, gate_dir: Any, log: Any) -> dict[str, Any]:
    rng = random.Random(0)
    out: dict[str, Any] = {}
    # validation: choose the training-free gate's threshold and g_max on training combos with 2 distractors
    val = heldout_combos(zoo, "train")
    val = rng.sample(val, 2)
    singles = [t["id"] for t in zoo.manifest["tasks"] if t["family"] in ("palette", "texture", "shape")]
    prompts, seeds, scenes = zoo.scenes(n)
    val_scores: dict[tuple[float, float], list[float]] = {kn: [] for kn in GATE_GRID}
    for cid in val:
        p, x = zoo.tasks[cid]["params"]["palette"], zoo.tasks[cid]["params"]["texture"]
        distract = rng.sample([s for s in singles if s not in (p, x)], 2)
        req = zoo.requests(cid, 1)[0]
        for kn in GATE_GRID:
            img = _method(zoo, [p, x, *distract], "gate", prompts, seeds, req, knobs=kn)
            r = zoo.judge_rows(img, scenes, {"palette": p, "texture": x})
            val_scores[kn].append(r["all"] + r["content_kept"])
    knobs = max(GATE_GRID, key=lambda kn: sum(val_scores[kn]))
    out["validation"] = {"combos": val, "score_all_plus_content": {f"threshold {t}, g_max {g}": sum(v) / len(v)
                         for (t, g), v in val_scores.items()}, "chosen_threshold": knobs[0], "chosen_g_max": knobs[1]}  # fmt: skip
    log(f"validation {knobs}: {out['validation']['score_all_plus_content']}")
    import tempfile

    from fusion.gate.config import GateConfig

    free_dir = tempfile.mkdtemp(prefix="fusion-gate-")
    GateConfig(kind="image", family="zoo-image", threshold=knobs[0], g_max=knobs[1]).save(free_dir)
    gates = {"gate_free": free_dir} | ({"gate": gate_dir} if gate_dir is not None else {})
    g_methods = list(gates)

    combos = heldout_combos(zoo, "heldout")[::2][: n_combos or None]  # every other: spread over palettes
    methods = ["alone:palette", "alone:texture", "linear", *MERGES, "switch", "composite", *g_methods, "oracle"]
    per: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    grid: dict[str, dict[str, torch.Tensor]] = {}
    for cid in combos:
        p, x = zoo.tasks[cid]["params"]["palette"], zoo.tasks[cid]["params"]["texture"]
        req = zoo.requests(cid, 1)[0]
        grid[cid] = {}
        for m in methods:
            t0 = time.perf_counter()
            mm = {"alone:palette": f"alone:{p}", "alone:texture": f"alone:{x}", "oracle": f"alone:{cid}"}.get(m, m)
            img = _method(zoo, [p, x], mm, prompts, seeds, req, gate_dir=gates.get(m))
            per[m].append(zoo.judge_rows(img, scenes, {"palette": p, "texture": x}))
            grid[cid][m] = img[:1]
            log(f"{cid} {m}: {per[m][-1]} ({time.perf_counter() - t0:.1f}s)")
    out["combos"] = {"ids": combos, "n_images": n, "methods": {m: _avg(v) for m, v in per.items()}}

    # triples: new shape + palette + texture (no oracle exists)
    shapes = ["star", "heart", "crescent", "arrow", "hourglass", "house"]
    triple_rows: dict[str, list[dict[str, float]]] = {m: [] for m in ("linear", "switch", "composite", *g_methods)}
    for i, cid in enumerate(combos[: max(2, len(combos) // 2)]):  # triples from half the combos
        s = shapes[i % len(shapes)]
        p, x = zoo.tasks[cid]["params"]["palette"], zoo.tasks[cid]["params"]["texture"]
        tp, ts, tsc = zoo.scenes(n, shape=s)
        req = f"{zoo.requests(s, 1)[0]} {zoo.requests(cid, 1)[0]}"
        for m in triple_rows:
            img = _method(zoo, [s, p, x], m, tp, ts, req, gate_dir=gates.get(m))
            triple_rows[m].append(zoo.judge_rows(img, tsc, {"shape": s, "palette": p, "texture": x}))
        log(f"triple {s}+{cid}: {[(m, v[-1]['all']) for m, v in triple_rows.items()]}")
    out["triples"] = {m: _avg(v) for m, v in triple_rows.items()}

    # k = 2, 4, 8 loaded: the requested two plus seeded random distractors
    ks = (2, 4, 8)
    sweep_methods = (*g_methods, "linear")
    sweep: dict[str, list[dict[str, float]]] = {f"{m}@{k}": [] for k in ks for m in sweep_methods}
    for cid in combos[:2]:
        p, x = zoo.tasks[cid]["params"]["palette"], zoo.tasks[cid]["params"]["texture"]
        distract = random.Random(cid).sample([s for s in singles if s not in (p, x)], max(ks) - 2)
        req = zoo.requests(cid, 1)[0]
        for k in ks:
            for m in sweep_methods:
                img = _method(zoo, [p, x, *distract[: k - 2]], m, prompts, seeds, req, gate_dir=gates.get(m))
                sweep[f"{m}@{k}"].append(zoo.judge_rows(img, scenes, {"palette": p, "texture": x}))
        log(f"sweep {cid}: {[(key, v[-1]['requested_rate']) for key, v in sweep.items() if v]}")
    out["sweep"] = {key: _avg(v) for key, v in sweep.items()}
    out["_grid"] = grid
    return out


# ------------------------------------------------------------------------------- text zoo
def text_zoo_kit(tasks: dict[str, Any]) -> tuple[dict[str, Any], Callable[[str], Any],
                                                 Callable[[list[str], str, list[str]], float]]:  # fmt: skip
    """The text zoo's task functions by id, its first adapter of a task (read once) and the exact-match
    accuracy of outputs for a task's inputs (what the ``fusion`` and ``fusion_route`` suites judge by)."""
    from benchmarks.zoo.text.tasks import all_tasks
    from registry.formats import read_adapter

    fns = {t.id: t for t in all_tasks()}
    cache: dict[str, Any] = {}

    def adapter(tid: str) -> Any:
        if tid not in cache:
            cache[tid] = read_adapter(TEXT_ZOO / tasks[tid]["adapters"][0]["path"])
        return cache[tid]

    def acc(outs: list[str], tid: str, inputs: list[str]) -> float:
        return sum(o == fns[tid].apply(s) for o, s in zip(outs, inputs, strict=True)) / len(inputs)

    return fns, adapter, acc


def text_suite(n_inputs: int, n_cases: int, gate_dir: Any, log: Any) -> dict[str, Any]:
    from benchmarks.zoo.text.evaluate import eval_inputs
    from benchmarks.zoo.text.model import load_base
    from encoders.text import get_text_encoder
    from fusion.compose import compose_text, gate_scores
    from fusion.gate import load_gate

    model, tok = load_base(TEXT_ZOO / "base")
    manifest = json.loads((TEXT_ZOO / "manifest.json").read_text())
    tasks = {t["id"]: t for t in manifest["tasks"]}
    fns, adapter, acc = text_zoo_kit(tasks)
    enc = get_text_encoder()

    gate = load_gate(gate_dir, kind="text", family="zoo-text")
    free_gate = load_gate(None, kind="text", family="zoo-text")
    free_rows: dict[int, list[float]] = {}
    one_step = [t for t in tasks if "__then__" not in t]
    rng = random.Random(0)
    targets = rng.sample(one_step, n_cases)
    rows: dict[int, list[float]] = {}
    routed_right: dict[int, list[bool]] = {}
    own_acc: dict[str, float] = {}
    for tid in targets:
        inputs = eval_inputs(fns[tid], n_inputs)
        own = compose_text(model, tok, [adapter(tid)], "", inputs, strategy="linear").outputs
        own_acc[tid] = acc(own, tid, inputs)
        held = [p["text"] for p in tasks[tid]["paraphrases"] if p["split"] == "heldout"] or [tasks[tid]["canonical"]]
        query = held[0]
        others = rng.sample([t for t in one_step if t != tid], 7)
        for k in (2, 4, 8):
            ids = [tid, *others[: k - 1]]
            descs = [tasks[i]["canonical"] for i in ids]
            scores = gate_scores(gate, query, descs, enc)
            res = compose_text(model, tok, [adapter(i) for i in ids], query, inputs, gate_dir=gate_dir, scores=scores)
            rows.setdefault(k, []).append(acc(res.outputs, tid, inputs) / max(own_acc[tid], 1e-9))
            routed_right.setdefault(k, []).append(max(range(k), key=lambda j: res.weights[j]) == 0)
            free = compose_text(model, tok, [adapter(i) for i in ids], query, inputs, gate_dir=None,
                                scores=gate_scores(free_gate, query, descs, enc))  # fmt: skip
            free_rows.setdefault(k, []).append(acc(free.outputs, tid, inputs) / max(own_acc[tid], 1e-9))
        log(f"text {tid}: own {own_acc[tid]:.2f} kept {[round(rows[k][-1], 2) for k in (2, 4, 8)]}")
    out: dict[str, Any] = {
        "routing": {str(k): {"accuracy_kept": round(sum(v) / len(v), 4),
                             "top1_routed": round(sum(routed_right[k]) / len(routed_right[k]), 4)} for k, v in rows.items()},
        "routing_training_free": {str(k): round(sum(v) / len(v), 4) for k, v in free_rows.items()},
        "own_accuracy": own_acc, "cases": targets, "n_inputs": n_inputs,
    }  # fmt: skip
    two = [t for t in tasks if "__then__" in t][: max(2, n_cases // 2)]
    trows: dict[str, list[float]] = {"oracle": [], "chain": [], "linear": [], "merge:cat": []}
    for tid in two:
        a, b = tid.split("__then__")
        if a not in tasks or b not in tasks:
            continue
        inputs = eval_inputs(fns[tid], n_inputs)
        trows["oracle"].append(
            acc(compose_text(model, tok, [adapter(tid)], "", inputs, strategy="linear").outputs, tid, inputs)
        )
        for m in ("chain", "linear", "merge:cat"):
            trows[m].append(
                acc(compose_text(model, tok, [adapter(a), adapter(b)], "", inputs, strategy=m).outputs, tid, inputs)
            )
        log(f"two-step {tid}: {[(m, v[-1]) for m, v in trows.items() if v]}")
    out["two_step"] = {m: round(sum(v) / max(len(v), 1), 4) for m, v in trows.items()} | {"tasks": two}
    return out


# ------------------------------------------------------------------------- exactness, cost
def exactness_rows() -> dict[str, Any]:
    from fusion.merge import merge
    from registry.formats import read_adapter

    a, b = (read_adapter(IMAGE_ZOO / "adapters" / n / "pytorch_lora_weights.safetensors") for n in ("sepia", "dots"))
    w = [0.7, -1.3]
    cat = merge([a, b], w).adapter
    worst = 0.0
    cross = []
    for name, ma in a.modules.items():
        mb = b.modules[name]
        exact = w[0] * ma.delta() + w[1] * mb.delta()
        worst = max(worst, float((cat.modules[name].delta() - exact).norm() / exact.norm()))
        if ma.kind == "linear":  # PEFT linear: Σ√|w|·sign·B and Σ√|w|·A combined separately
            sa, sb = (abs(x) ** 0.5 for x in w)
            peft = (sa * ma.scale**0.5 * ma.up - sb * mb.scale**0.5 * mb.up) @ (
                sa * ma.scale**0.5 * ma.down + sb * mb.scale**0.5 * mb.down
            )
            cross.append(float((peft - exact).norm() / exact.norm()))
    neg = merge([a, a], [1.0, -1.0]).adapter
    zero = max(float(m.delta().abs().max()) for m in neg.modules.values())
    svd = {r: merge([a, b], strategy="svd", rank=r).info["relative_error"] for r in (1, 2, 4, 6)}
    return {
        "cat_max_relative_error": worst,
        "a_minus_a_max_abs": zero,
        "peft_linear_cross_term_relative_error_mean": sum(cross) / len(cross),
        "svd_relative_error_by_rank": svd,
        "pair": "sepia, dots (weights 0.7, -1.3)",
    }


def cost_rows(zoo: ImageZoo, repeats: int = 5) -> dict[str, Any]:
    """Per-step UNet latency (batch 8, the zoo pipeline) with k installed adapters vs merged vs base."""
    from benchmarks.run import median_time
    from fusion.merge import merge
    from fusion.runtime import install

    ids = ["sepia", "dots", "grayscale", "grid", "star", "night", "waves", "heart"]
    ads = [zoo.adapter(i) for i in ids]
    g = torch.Generator().manual_seed(0)
    x, st = torch.randn(8, 12, 16, 16, generator=g), torch.randn(8, 16, 64, generator=g)
    unet = zoo.pipe.unet

    def step() -> None:
        with torch.no_grad():
            unet(x, 500, encoder_hidden_states=st)

    times: dict[str, float] = {"base": median_time(step, repeats)[0]}
    for k in (1, 2, 4, 8):
        with install(zoo.pipe, ads[:k]):
            times[f"unmerged_k{k}"] = median_time(step, repeats)[0]
    with install(zoo.pipe, [merge(ads, strategy="cat").adapter]):
        times["merged_cat_k8_rank32"] = median_time(step, repeats)[0]
    with install(zoo.pipe, [merge(ads, strategy="svd", rank=4).adapter]):
        times["merged_svd_k8_rank4"] = median_time(step, repeats)[0]
    ref = times["unmerged_k1"]
    return {"seconds": times, "ratio_vs_k1": {k: round(v / ref, 3) for k, v in times.items()}, "batch": 8,
            "device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads()}  # fmt: skip


# ------------------------------------------------------------------------------ pictures
def sample_grid(grid: dict[str, dict[str, torch.Tensor]], columns: list[str], path: Path, scale: int = 3) -> Path:
    from PIL import Image, ImageDraw

    from fusion.compose import to_pil

    rows = list(grid)
    cell, label_w, head = 32 * scale, 150, 18
    img = Image.new("RGB", (label_w + cell * len(columns), head + cell * len(rows)), "white")
    d = ImageDraw.Draw(img)
    for j, c in enumerate(columns):
        d.text((label_w + j * cell + 2, 2), c[:16], fill="black")
    for i, r in enumerate(rows):
        d.text((2, head + i * cell + cell // 2 - 5), r, fill="black")
        for j, c in enumerate(columns):
            if c in grid[r]:
                pic = to_pil(grid[r][c][:1])[0].resize((cell, cell), Image.NEAREST)
                img.paste(pic, (label_w + j * cell, head + i * cell))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


# --------------------------------------------------------------------------------- suite
def _ratio_rows(combos: dict[str, Any]) -> list[dict[str, Any]]:
    ms = combos["methods"]
    oracle, base = ms["oracle"], None
    rows = []
    for m, r in ms.items():
        row: dict[str, Any] = {"part": "heldout combos", "method": m}
        row.update({k: r[k] for k in ("hit_palette", "hit_texture", "all", "content_kept")})
        row["all_ratio_vs_oracle"] = round(r["all"] / oracle["all"], 3) if oracle["all"] else None
        rows.append(row)
    del base
    return rows


def suite_fusion(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)  # on a shared 2-core machine one thread is several times faster
    quick = bool(getattr(args, "quick", False))
    t_start = time.perf_counter()
    logs: list[str] = []

    def log(msg: str) -> None:
        logs.append(msg)
        print(msg, flush=True)

    from fusion.gate import bundled_gate_dir

    result: dict[str, Any] = {"exactness": exactness_rows()}
    zoo = ImageZoo()
    result["cost"] = cost_rows(zoo, 3 if quick else 5)
    image_gate = bundled_gate_dir("zoo-image")
    n = 2 if quick else 4
    img = image_suite(zoo, n, 2 if quick else N_COMBOS, image_gate, log)
    grid = img.pop("_grid")
    result["image"] = img
    result["text"] = text_suite(8 if quick else 20, 3 if quick else 8, bundled_gate_dir("zoo-text"), log)
    rows = _ratio_rows(img["combos"])
    for m, r in img["triples"].items():
        rows.append({"part": "triples", "method": m, "hit_palette": r["hit_palette"], "hit_texture": r["hit_texture"],
                     "all": r["all"], "content_kept": r["content_kept"], "all_ratio_vs_oracle": None})  # fmt: skip
    for key, r in img["sweep"].items():
        rows.append({"part": f"k-sweep {key.split('@')[1]}", "method": key.split("@")[0], "hit_palette": r["hit_palette"],
                     "hit_texture": r["hit_texture"], "all": r["all"], "content_kept": r["content_kept"],
                     "all_ratio_vs_oracle": None})  # fmt: skip
    result["rows"] = rows
    result["gate"] = {"image": str(image_gate) if image_gate else "training-free description gate (threshold, g_max from validation)",
                      "text": str(bundled_gate_dir("zoo-text") or "training-free description gate")}  # fmt: skip
    out = Path(getattr(args, "out", RESULTS))
    best_merge = max(MERGES, key=lambda m: img["combos"]["methods"][m]["all"])
    cols = ["alone:palette", "alone:texture", "linear", best_merge, "gate", "oracle"]
    result["pictures"] = {"grid": str(sample_grid(grid, cols, out / "fusion_samples.png").relative_to(REPO))}
    result["pictures"]["gates"] = str(_gate_picture(zoo, img["combos"]["ids"][0], image_gate, out).relative_to(REPO))
    result["note"] = (
        f"Image rows: {n} images per combo (zoo evaluation prompts and seeds), DDIM {STEPS} steps, guidance {GUIDANCE}; "
        "merge:cat equals linear exactly (the same ΔW sum) and is not repeated. The training-free gate's threshold and g_max were chosen on training "
        "combos (validation) and the rows report held-out combos. Text: accuracy kept = composed accuracy ÷ the task's "
        f"own adapter on the same inputs. Wall time {time.perf_counter() - t_start:.0f} s on CPU (1 thread)."
    )
    result["log"] = logs
    return result


def _gate_picture(zoo: ImageZoo, cid: str, gate_dir: Any, out: Path) -> Path:
    from fusion.compose import compose_images
    from fusion.plot import plot_gates

    p, x = zoo.tasks[cid]["params"]["palette"], zoo.tasks[cid]["params"]["texture"]
    prompts, seeds, _ = zoo.scenes(1)
    res = compose_images(zoo.pipe, [zoo.adapter(p), zoo.adapter(x), zoo.adapter("star")], prompts, strategy="gate",
                         request=zoo.requests(cid, 1)[0], gate_dir=gate_dir, steps=STEPS, guidance=GUIDANCE,
                         seeds=seeds, names=[p, x, "star (distractor)"])  # fmt: skip
    return plot_gates(res.gate_trace, out / "fusion_gates.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="benchmarks.fusion", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train a zoo family's gate into fusion/checkpoints/<family>")
    tr.add_argument("kind", choices=("image", "text"))
    tr.add_argument("--steps", type=int, default=None)
    tr.add_argument("--out", type=Path, default=None)
    tr.add_argument("--method", choices=("calibrated", "autolora"), default="calibrated", help="image gates only")
    tr.add_argument("--hold-val", action="store_true", help="image: leave out the validation combos as well")
    sub.add_parser("run", help="the suite (same as python -m benchmarks.run fusion)")
    args = ap.parse_args(argv)
    if args.cmd == "train":
        from benchmarks.fusion_train import train_calibrated_gate, train_image_gate, train_text_gate

        if args.kind == "text":
            res = train_text_gate(out=args.out, steps=args.steps)
        elif args.method == "autolora":
            res = train_image_gate(out=args.out, steps=args.steps)
        else:
            res = train_calibrated_gate(out=args.out, steps=args.steps, hold_val=args.hold_val)
        print(json.dumps({k: v for k, v in res.items() if k != "combos"}, indent=1))
        return 0
    from benchmarks.run import main as run_main

    return run_main(["fusion"])


if __name__ == "__main__":
    raise SystemExit(main())
