"""Build the image zoo from nothing: pre-train the base, train the judge, train and judge every adapter.

``python -m benchmarks.zoo build image [--tiny] [--out DIR] [--workers N] [--resume-base]`` calls
``build``. Output::

    base/          the StableDiffusionPipeline folder (model_index.json, unet/, text_encoder/, tokenizer/,
                   scheduler/, vae/) + zoo_model_config.json, zoo_pretrain_config.json, zoo_timings.json
    classifiers/   classifier.safetensors + config.json (the judge; holdout accuracy per head)
    adapters/<id>[_s<seed>]/   pytorch_lora_weights.safetensors, description.txt
    manifest.json  adapters (id, family, params, split, descriptions, seeds, paths, scores), config, table
    RESULTS.md     the per-family quality table
    samples.png    base (left) vs adapter (right) images for a few adapters
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.zoo.common import adapter_name as common_name
from benchmarks.zoo.common import device_and_workers, run_chunks, split_chunks, spread_over_families
from benchmarks.zoo.image.captions import FAMILIES, AdapterSpec, all_adapters, tiny_adapters
from benchmarks.zoo.image.classifiers import (
    ClassifierConfig,
    holdout_accuracy,
    judge_heads,
    load_classifier,
    save_classifier,
    train_classifier,
)
from benchmarks.zoo.image.evaluate import N_EVAL, base_content_accuracy, evaluate
from benchmarks.zoo.image.finalize import counts, drop_below_bars
from benchmarks.zoo.image.lora import (
    WEIGHT_NAME,
    LoraShape,
    adapter_state,
    load_stacked,
    round_to_storage,
    shape_dict,
    write_diffusers,
)
from benchmarks.zoo.image.model import ModelConfig, build_pipeline, count_params, load_base, save_base
from benchmarks.zoo.image.report import family_table, results_markdown, sample_grid
from benchmarks.zoo.image.shapes import COMBO_TEXTURE_REGION
from benchmarks.zoo.image.train import AdapterTrainConfig, PretrainConfig, pretrain, train_adapters

ZOO_DIR = Path(__file__).resolve().parent
MANIFEST_VERSION = 1
ADAPTER_RECIPE = "zoo_adapter_recipe.json"  # training config of the adapters in adapters/ (checked by --resume)
ROUNDS_FILE = "zoo_rounds.json"  # adapter name -> the last retrain round it went through (--resume skips those)


@dataclass
class RetrainRound:
    """An extra round for adapters still below a bar: a fresh start from another seed, trained longer."""

    steps_factor: int  # steps = first-round steps x this factor (at least the family's first-round steps)
    lr_factor: float = 1.0  # learning rate x this factor


@dataclass
class BuildConfig:
    """Everything that determines the zoo (written into manifest.json)."""

    seed: int = 0  # seed of adapter selection, initialisation and data
    model: ModelConfig = field(default_factory=ModelConfig)  # base pipeline shape
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # base pre-training
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)  # the judge
    adapters: AdapterTrainConfig = field(default_factory=AdapterTrainConfig)  # first round of LoRA training
    lora: LoraShape = field(default_factory=LoraShape)  # rank, alpha, targets, storage dtype
    n_combos: int = 48  # palette x texture combination adapters
    combo_steps_factor: int = 2  # combos learn a palette and a texture at once: trained this many times longer
    n_heldout: int = 12  # of which held-out tasks
    extra_seeds: tuple[int, ...] = (1,)  # further seeds trained for a subset of training adapters
    n_seed_adapters: int = 8  # how many training adapters get the extra seeds
    n_eval: int = N_EVAL  # evaluation prompts per adapter
    eval_steps: int = 20  # DDIM steps when judging
    guidance: float = 4.0  # classifier-free guidance scale when judging
    style_bar: float = 0.8  # an oracle adapter must reach this style hit rate ...
    content_bar: float = 0.7  # ... with at least this share of content kept, or it is retrained
    retrain: tuple[RetrainRound, ...] = (RetrainRound(2), RetrainRound(3, 0.5), RetrainRound(4, 0.5))  # extra rounds
    drop_below_bars: bool = True  # leave out adapters still below a bar after the last round (see finalize)
    tiny: bool = False  # smoke build: few adapters, tiny model, few steps

    def __post_init__(self) -> None:
        if not (0 < self.style_bar <= 1 and 0 < self.content_bar <= 1):
            raise ValueError(f"bars must be in (0, 1]: {self.style_bar}, {self.content_bar}")
        if self.n_eval <= 0 or self.eval_steps <= 0:
            raise ValueError(f"n_eval and eval_steps must be positive: {self.n_eval}, {self.eval_steps}")

    @classmethod
    def tiny_config(cls) -> BuildConfig:
        return cls(
            model=ModelConfig.tiny(),
            pretrain=PretrainConfig(steps=30, batch_size=16, warmup=5, ema=0.9),
            classifier=ClassifierConfig(width=8, steps=30, batch_size=32),
            adapters=AdapterTrainConfig(steps=6, per_adapter=2, chunk=4, warmup=2),
            extra_seeds=(1,),
            n_seed_adapters=1,
            n_eval=4,
            eval_steps=4,
            retrain=(RetrainRound(2),),
            drop_below_bars=False,  # a smoke build's adapters are not meant to pass
            tiny=True,
        )

    def specs(self) -> list[AdapterSpec]:
        return tiny_adapters() if self.tiny else all_adapters(self.seed, self.n_combos, self.n_heldout)

    def family_train(self, family: str, base: AdapterTrainConfig | None = None) -> AdapterTrainConfig:
        """The schedule of ``family``'s adapters in a round whose other adapters follow ``base``."""
        base = base or self.adapters
        if family != "combo":
            return base
        return replace(base, steps=max(base.steps, self.adapters.steps * self.combo_steps_factor))

    def recipe(self) -> dict[str, Any]:
        """What the written adapters depend on besides the base: per family, its schedule and its data."""
        data = {"combo": {"texture_region": COMBO_TEXTURE_REGION}}
        return {"lora": shape_dict(self.lora), "seed": self.seed,
                "families": {f: {"train": asdict(self.family_train(f)), "data": data.get(f, {})} for f in FAMILIES}}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora"] = shape_dict(self.lora)
        d["extra_seeds"] = list(self.extra_seeds)
        d["model"]["channels"] = list(self.model.channels)
        return d


def adapter_name(spec: AdapterSpec, seed: int) -> str:
    return common_name(spec.id, seed)


def seed_adapters(specs: list[AdapterSpec], n: int, seed: int) -> list[AdapterSpec]:
    """``n`` training adapters for the extra seeds, spread over families (round-robin)."""
    return spread_over_families(specs, n, f"seed-adapters-{seed}")


def passes(r: dict[str, Any], cfg: BuildConfig) -> bool:
    return r["style_hit"] >= cfg.style_bar and r["content_kept"] >= cfg.content_bar


def _score(r: dict[str, Any], cfg: BuildConfig) -> tuple[bool, float]:
    return passes(r, cfg), r["style_hit"] + r["content_kept"]


def _thumbs(images: torch.Tensor) -> np.ndarray:
    """The first 4 judged images ``(n, 3, H, W)`` in [0, 1] as uint8, kept for the sample grid."""
    return (images[:4].numpy() * 255).round().astype(np.uint8)


def _train_chunk(
    out: Path,
    jobs: list[tuple[AdapterSpec, int]],
    cfg: BuildConfig,
    train_cfg: AdapterTrainConfig,
    init_seed: int,
    device: str,
    threads: int,
    label: str,
    position: int | None = None,
) -> list[dict[str, Any]]:
    """Train one stacked chunk on a freshly loaded base and judge it; runs in a worker process or inline."""
    if threads > 0:
        torch.set_num_threads(threads)
    pipe = load_base(out / "base", device)
    judge = load_classifier(out / "classifiers", device)
    seeded = [(spec, seed + 1000 * init_seed) for spec, seed in jobs]  # another init in each retrain round
    wrapped, losses = train_adapters(pipe, seeded, cfg.lora, train_cfg, device, desc=label, position=position)
    round_to_storage(wrapped, cfg.lora)
    routing = next(iter(wrapped.values())).routing
    scores = evaluate(pipe, judge, [s for s, _ in jobs], routing=routing, adapters=list(range(len(jobs))),
                      n=cfg.n_eval, steps=cfg.eval_steps, guidance=cfg.guidance, seed=cfg.seed,
                      return_images=True)  # fmt: skip
    return [
        {"style_hit": sc["style_hit"], "content_kept": sc["content_kept"], "final_loss": loss,
         "images": _thumbs(sc["images"]), "state": adapter_state(wrapped, i, cfg.lora)}
        for i, (sc, loss) in enumerate(zip(scores, losses, strict=True))
    ]  # fmt: skip


def _train_round(
    jobs: list[tuple[AdapterSpec, int]],
    cfg: BuildConfig,
    train_cfg: AdapterTrainConfig,
    init_seed: int,
    device: str,
    out: Path,
    results: dict[tuple[str, int], dict[str, Any]],
    label: str,
    workers: int,
) -> None:
    """Train ``jobs`` in stacked chunks (in ``workers`` processes); write each adapter that beats its last result."""
    chunks = split_chunks(jobs, train_cfg.chunk, workers)
    threads = 1 if workers > 1 else 0

    def args(c: int) -> tuple[Any, ...]:
        pos = c % workers if workers > 1 else None
        return (out, chunks[c], cfg, train_cfg, init_seed, device, threads, f"{label} {c + 1}/{len(chunks)}", pos)

    def collect(c: int, res: list[dict[str, Any]]) -> None:
        for (spec, seed), r in zip(chunks[c], res, strict=True):
            key = (spec.id, seed)
            if key in results and _score(results[key], cfg) >= _score(r, cfg):
                continue
            name = adapter_name(spec, seed)
            write_diffusers(out / "adapters" / name, r.pop("state"), cfg.lora, spec.record()["canonical"], name)
            results[key] = {"seed": seed, "path": f"adapters/{name}", "style_hit": r["style_hit"],
                            "content_kept": r["content_kept"], "round": init_seed, "steps": train_cfg.steps, "lr": train_cfg.lr,
                            "final_loss": r["final_loss"], "images": r["images"]}  # fmt: skip
        hits = [r["style_hit"] for r in res]
        kept = [r["content_kept"] for r in res]
        print(f"[{label} {c + 1}/{len(chunks)}] style hit mean {np.mean(hits):.3f} min {min(hits):.3f}; "
              f"content kept mean {np.mean(kept):.3f} min {min(kept):.3f}", flush=True)  # fmt: skip

    run_chunks(len(chunks), workers, _train_chunk, args, collect)


def _stale_families(out: Path, recipe: dict[str, Any]) -> set[str]:
    """Families whose adapters in ``out`` were trained with another recipe than ``recipe`` (retrained
    on ``--resume``). Another LoRA shape or seed invalidates every adapter: that is refused."""
    path = out / ADAPTER_RECIPE
    if not path.is_file():
        return set()
    saved = json.loads(path.read_text())
    if "families" not in saved:  # first format: one schedule for every family, no data options
        saved = {"lora": saved["lora"], "seed": saved["seed"],
                 "families": {f: {"train": saved["adapters"], "data": {}} for f in FAMILIES}}  # fmt: skip
    if (saved["lora"], saved["seed"]) != (recipe["lora"], recipe["seed"]):
        raise ValueError(f"{out / 'adapters'} was trained with another recipe ({path}): "
                         "use --resume-base to train the adapters again")  # fmt: skip
    stale = {f for f, r in recipe["families"].items() if saved["families"].get(f) != r}
    if stale:
        print(f"[resume] recipe changed for {sorted(stale)}: their adapters are trained again", flush=True)
    return stale


def _by_schedule(
    jobs: list[tuple[AdapterSpec, int]], cfg: BuildConfig, base: AdapterTrainConfig
) -> list[tuple[AdapterTrainConfig, list[tuple[AdapterSpec, int]]]]:
    """``jobs`` grouped by their family's schedule in a round following ``base`` (one stack each)."""
    groups: dict[str, tuple[AdapterTrainConfig, list[tuple[AdapterSpec, int]]]] = {}
    for job in jobs:
        train_cfg = cfg.family_train(job[0].family, base)
        groups.setdefault(json.dumps(asdict(train_cfg), sort_keys=True), (train_cfg, []))[1].append(job)
    return list(groups.values())


def _judge_existing(
    out: Path, jobs: list[tuple[AdapterSpec, int]], cfg: BuildConfig, device: str,
    results: dict[tuple[str, int], dict[str, Any]],
) -> list[tuple[AdapterSpec, int]]:  # fmt: skip
    """Adapters of ``jobs`` already written by an interrupted build: judged again (same prompts and
    seeds as the build) instead of retrained. Unreadable leftovers are removed and retrained."""
    from safetensors import safe_open

    found: list[tuple[AdapterSpec, int]] = []
    folders: list[Path] = []
    for spec, seed in jobs:
        folder = out / "adapters" / adapter_name(spec, seed)
        try:
            with safe_open(str(folder / WEIGHT_NAME), "pt") as fh:
                fh.keys()
            found.append((spec, seed))
            folders.append(folder)
        except Exception:  # missing or half-written (any safetensors error): train it again
            shutil.rmtree(folder, ignore_errors=True)
    if not found:
        return []
    pipe = load_base(out / "base", device)
    judge = load_classifier(out / "classifiers", device)
    routing, _ = load_stacked(pipe.unet, folders, cfg.lora)
    scores = evaluate(pipe, judge, [s for s, _ in found], routing=routing, adapters=list(range(len(found))),
                      n=cfg.n_eval, steps=cfg.eval_steps, guidance=cfg.guidance, seed=cfg.seed,
                      return_images=True)  # fmt: skip
    for (spec, seed), sc in zip(found, scores, strict=True):
        name = adapter_name(spec, seed)
        results[(spec.id, seed)] = {"seed": seed, "path": f"adapters/{name}", "style_hit": sc["style_hit"],
                                    "content_kept": sc["content_kept"], "round": None, "steps": None, "lr": None,
                                    "final_loss": None, "resumed": True,
                                    "images": _thumbs(sc["images"])}  # fmt: skip
    print(f"[resume] judged {len(found)} adapters found on disk", flush=True)
    return found


def _base_and_judge(
    cfg: BuildConfig, out: Path, device: str, resume_base: bool, timings: dict[str, float]
) -> tuple[Any, Any, dict[str, float]]:
    """Pre-train (or reuse) the base and train (or reuse) the judge; returns pipeline, judge, judge accuracy."""
    if resume_base:
        saved = json.loads((out / "base" / "zoo_pretrain_config.json").read_text())
        if saved != asdict(cfg.pretrain):
            raise ValueError(f"{out / 'base'} was pre-trained with another config: {saved}")
        pipe = load_base(out / "base", device)
        timings_file = out / "base" / "zoo_timings.json"
        timings["pretrain_s"] = float(json.loads(timings_file.read_text())["pretrain_s"]) if timings_file.is_file() else float("nan")  # fmt: skip
    else:
        pipe = build_pipeline(cfg.model, seed=cfg.seed)
        t0 = time.time()
        pretrain(pipe, cfg.pretrain, device)
        timings["pretrain_s"] = time.time() - t0
        save_base(pipe, cfg.model, out / "base")
        (out / "base" / "zoo_pretrain_config.json").write_text(json.dumps(asdict(cfg.pretrain), indent=2))
        (out / "base" / "zoo_timings.json").write_text(json.dumps({"pretrain_s": timings["pretrain_s"]}))
        pipe = load_base(out / "base", device)  # evaluate exactly what was saved
    judge_cfg = out / "classifiers" / "config.json"
    saved_judge = json.loads(judge_cfg.read_text()) if resume_base and judge_cfg.is_file() else {}
    if saved_judge.get("config") == asdict(cfg.classifier) and saved_judge.get("heads") == judge_heads():
        judge = load_classifier(out / "classifiers", device)
        acc = saved_judge["holdout_accuracy"]
        timings["classifier_s"] = 0.0
    else:
        t0 = time.time()
        judge = train_classifier(cfg.classifier, device)
        acc = holdout_accuracy(judge, cfg.classifier, n=200 if cfg.tiny else 2000)
        save_classifier(judge, cfg.classifier, out / "classifiers", {"holdout_accuracy": acc})
        timings["classifier_s"] = time.time() - t0
    print(f"[judge] holdout accuracy {acc}", flush=True)
    return pipe, judge, acc


def build(
    out: Path | None = None,
    *,
    config: BuildConfig | None = None,
    tiny: bool = False,
    device: str | None = None,
    workers: int | None = None,
    resume_base: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Build the zoo into ``out`` (default: this package's folder) and return the manifest.

    ``workers``: processes for adapter training (default: 1 on CUDA or for ``tiny``, else
    ``torch.get_num_threads()``, one thread each). ``resume_base`` reuses a base (and judge)
    pre-trained with the same config in ``out``. ``resume`` does that and also keeps the adapters
    an interrupted build already wrote: they are judged again instead of retrained.
    """
    resume_base = resume_base or resume
    cfg = config or (BuildConfig.tiny_config() if tiny else BuildConfig())
    out = Path(out) if out is not None else ZOO_DIR
    device, workers = device_and_workers(cfg.tiny, device, workers)
    t_start = time.time()
    resume_base = resume_base and (out / "base" / "model_index.json").is_file()
    resume = resume and resume_base
    recipe = cfg.recipe()
    stale = _stale_families(out, recipe) if resume else set()
    for old in () if resume else ("adapters",) if resume_base else ("base", "adapters", "classifiers"):
        shutil.rmtree(out / old, ignore_errors=True)
    for old in ("manifest.json", "RESULTS.md", "samples.png"):
        (out / old).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    specs = cfg.specs()
    extra = seed_adapters(specs, cfg.n_seed_adapters, cfg.seed) if cfg.extra_seeds else []
    jobs = [(s, 0) for s in specs] + [(s, k) for k in cfg.extra_seeds for s in extra]
    keep = {adapter_name(spec, seed) for spec, seed in jobs if spec.family not in stale}
    for folder in (out / "adapters").glob("*") if resume else ():  # removed before the new recipe is written,
        if folder.name not in keep:  # so a later --resume cannot keep them: another recipe, or no longer listed
            shutil.rmtree(folder, ignore_errors=True)
    rounds_file = out / ROUNDS_FILE
    tried: dict[str, int] = {}  # the rounds are seeded: one an adapter went through would only reproduce it
    if resume and rounds_file.is_file():
        tried = {n: r for n, r in json.loads(rounds_file.read_text()).items() if n in keep}
    rounds_file.write_text(json.dumps(tried, indent=1, sort_keys=True))
    (out / ADAPTER_RECIPE).write_text(json.dumps(recipe, indent=1))  # what --resume checks kept adapters against
    timings: dict[str, float] = {}
    pipe, judge, judge_acc = _base_and_judge(cfg, out, device, resume_base, timings)

    t0 = time.time()
    base_quality = base_content_accuracy(pipe, judge, cfg.n_eval * 2, seed=cfg.seed)
    base_scores = evaluate(pipe, judge, specs, n=cfg.n_eval, steps=cfg.eval_steps, guidance=cfg.guidance,
                           seed=cfg.seed, return_images=True)  # fmt: skip
    timings["base_eval_s"] = time.time() - t0
    print(f"[base] quality {base_quality}; style hit max {max(b['style_hit'] for b in base_scores):.3f}", flush=True)
    del pipe, judge

    results: dict[tuple[str, int], dict[str, Any]] = {}
    t0 = time.time()
    done = set(_judge_existing(out, jobs, cfg, device, results)) if resume else set()
    todo = [j for j in jobs if j not in done]

    def went_through(jobs_done: list[tuple[AdapterSpec, int]], r: int) -> None:
        tried.update({adapter_name(s, k): r for s, k in jobs_done})
        rounds_file.write_text(json.dumps(tried, indent=1, sort_keys=True))

    for train_cfg, group in _by_schedule(todo, cfg, cfg.adapters):
        _train_round(group, cfg, train_cfg, 0, device, out, results, "adapters", workers)
        went_through(group, 0)
    for r, rr in enumerate(cfg.retrain, start=1):
        failing = [(s, k) for s, k in jobs if not passes(results[(s.id, k)], cfg)]
        if not failing:
            break
        todo = [(s, k) for s, k in failing if tried.get(adapter_name(s, k), 0) < r]
        print(f"[retrain round {r}] {len(failing)} adapters below the bars, {len(failing) - len(todo)} of them went "
              f"through this round before: {[adapter_name(s, k) for s, k in todo]}", flush=True)  # fmt: skip
        more = replace(cfg.adapters, steps=cfg.adapters.steps * rr.steps_factor, lr=cfg.adapters.lr * rr.lr_factor)
        for train_cfg, group in _by_schedule(todo, cfg, more):
            _train_round(group, cfg, train_cfg, r, device, out, results, f"retrain {r}", workers)
            went_through(group, r)
    timings["adapters_s"] = time.time() - t0

    records, grid_rows = [], []
    for spec, base in zip(specs, base_scores, strict=True):
        adapters = sorted((v for (sid, _), v in results.items() if sid == spec.id), key=lambda a: a["seed"])
        grid_rows.append((spec.id, _thumbs(base["images"]), adapters[0]["images"]))
        adapters = [{k: v for k, v in a.items() if k != "images"} for a in adapters]
        records.append({
            "id": spec.id, "family": spec.family, "params": spec.params, "split": spec.split, **spec.record(),
            "seeds": [a["seed"] for a in adapters], "adapters": adapters,
            "oracle_style_hit": adapters[0]["style_hit"], "oracle_content_kept": adapters[0]["content_kept"],
            "base_style_hit": base["style_hit"], "base_content_kept": base["content_kept"],
        })  # fmt: skip
    dropped: list[dict[str, Any]] = []
    bars = {"oracle_style_hit": cfg.style_bar, "oracle_content_kept": cfg.content_bar, "base_style_hit": 0.2}
    if cfg.drop_below_bars:
        records, dropped = drop_below_bars(records, bars, out, seed=cfg.seed, n_combos=cfg.n_combos,
                                           n_heldout=cfg.n_heldout, rounds=tried)  # fmt: skip
    rows = family_table(records)
    timings["total_s"] = time.time() - t_start
    base_pipe = load_base(out / "base")
    manifest = {
        "version": MANIFEST_VERSION,
        "kind": "image",
        "base": {"path": "base", "pipeline": "StableDiffusionPipeline", "resolution": 32,
                 "latents": "pixel space: 2x2 pixel-unshuffle, 16x16x12 (PixelShuffleVAE)",
                 "params": {"unet": count_params(base_pipe.unet), "text_encoder": count_params(base_pipe.text_encoder)}},
        "prompt_format": "content only, e.g. 'a red circle on a navy background'; the adapter supplies the style",
        "metric": (f"{cfg.n_eval} prompts per adapter, DDIM {cfg.eval_steps} steps, guidance {cfg.guidance}; "
                   "style hit = judge sees the adapter's palette/texture/shape; content kept = judge sees the "
                   "prompt's shape (style adapters) or colour (new shapes)"),
        "bars": bars,
        "judge": {"path": "classifiers", "holdout_accuracy": judge_acc},
        "base_quality": base_quality,
        "config": cfg.to_dict(),
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads, {workers} workers)",
        "timings": timings,
        "counts": counts(records, dropped, bars),
        "dropped": dropped,
        "table": rows,
        "tasks": records,
    }  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (out / "RESULTS.md").write_text(results_markdown(manifest))
    sample_grid(grid_rows, out / "samples.png")
    print(results_markdown(manifest), flush=True)
    return manifest
