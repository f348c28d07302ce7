"""Build the text zoo from nothing: pre-train the base, train every adapter, evaluate, write the manifest.

``python -m benchmarks.zoo build text [--tiny] [--out DIR]`` calls ``build``. Output::

    base/            config.json, model.safetensors, tokenizer.json, zoo_*_config.json
    adapters/<id>[_s<seed>]/   adapter_config.json, adapter_model.safetensors, description.txt
    manifest.json    tasks (id, family, params, descriptions with splits, adapters, accuracies), table
    RESULTS.md       the per-family quality table
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks.zoo.common import adapter_name as common_name
from benchmarks.zoo.common import device_and_workers, run_chunks, split_chunks, spread_over_families
from benchmarks.zoo.text.descriptions import description_record
from benchmarks.zoo.text.evaluate import N_EVAL, evaluate_tasks
from benchmarks.zoo.text.lora import LoraShape, adapter_state, round_to_storage, write_peft
from benchmarks.zoo.text.model import CharTokenizer, ModelConfig, build_model, count_params, load_base, save_base
from benchmarks.zoo.text.tasks import Task, all_tasks, tiny_tasks
from benchmarks.zoo.text.train import AdapterTrainConfig, PretrainConfig, pretrain, train_adapters

ZOO_DIR = Path(__file__).resolve().parent
MANIFEST_VERSION = 1


@dataclass
class RetrainRound:
    """An extra round for adapters still below the bar: a fresh start from the same seed, trained longer."""

    steps_factor: int  # steps = first-round steps x this factor
    distill: float  # context-distillation weight; 0 = cross-entropy only, which can surpass an imperfect teacher
    per_adapter: int = 16  # sequences per adapter per step


@dataclass
class BuildConfig:
    """Everything that determines the zoo (written into manifest.json)."""

    seed: int = 0  # seed of task selection, initialisation and data
    model: ModelConfig = field(default_factory=ModelConfig)  # base model shape
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # base pre-training
    adapters: AdapterTrainConfig = field(default_factory=AdapterTrainConfig)  # first round of LoRA training
    lora: LoraShape = field(default_factory=LoraShape)  # rank, alpha, targets, storage dtype
    extra_seeds: tuple[int, ...] = (1, 2)  # further seeds trained for a subset of training tasks
    n_seed_tasks: int = 20  # how many training tasks get the extra seeds
    n_eval: int = N_EVAL  # held-out strings per task
    oracle_bar: float = 0.9  # adapters below this accuracy are retrained (see retrain)
    retrain: tuple[RetrainRound, ...] = (
        RetrainRound(2, 1.0),
        RetrainRound(10, 0.0),
        RetrainRound(30, 0.0),
    )  # extra rounds
    tiny: bool = False  # smoke build: few tasks, tiny model, few steps

    def __post_init__(self) -> None:
        if not 0.0 < self.oracle_bar <= 1.0:
            raise ValueError(f"oracle_bar must be in (0, 1], got {self.oracle_bar}")
        if self.n_eval <= 0:
            raise ValueError(f"n_eval must be positive, got {self.n_eval}")

    @classmethod
    def tiny_config(cls) -> BuildConfig:
        return cls(
            model=ModelConfig.tiny(),
            pretrain=PretrainConfig(steps=30, batch_size=32, warmup=5),
            adapters=AdapterTrainConfig(steps=10, per_adapter=4, chunk=4, warmup=2),
            extra_seeds=(1,),
            n_seed_tasks=1,
            n_eval=8,
            retrain=(RetrainRound(2, 0.0, 4),),
            tiny=True,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora"]["targets"] = list(self.lora.targets)
        d["extra_seeds"] = list(self.extra_seeds)
        return d


def adapter_name(task: Task, seed: int) -> str:
    return common_name(task.id, seed)


def seed_tasks(tasks: list[Task], n: int, seed: int) -> list[Task]:
    """``n`` training tasks for the extra seeds, spread over families (round-robin)."""
    return spread_over_families(tasks, n, f"seed-tasks-{seed}")


def _train_chunk(
    base_dir: Path,
    jobs: list[tuple[Task, int]],
    shape: LoraShape,
    train_cfg: AdapterTrainConfig,
    n_eval: int,
    seed: int,
    device: str,
    threads: int,
    label: str,
    position: int | None = None,
) -> list[dict[str, Any]]:
    """Train one stacked chunk on a freshly loaded base, evaluate it; runs in a worker process or inline."""
    if threads > 0:
        torch.set_num_threads(threads)
    model, tok = load_base(base_dir, device)
    wrapped, losses = train_adapters(model, tok, jobs, shape, train_cfg, device, desc=label, position=position)
    round_to_storage(wrapped, shape)
    routing = next(iter(wrapped.values())).routing
    accs = evaluate_tasks(
        model, tok, [t for t, _ in jobs], n=n_eval, routing=routing, adapters=list(range(len(jobs))), seed=seed
    )
    return [
        {"accuracy": acc, "final_loss": loss, "state": adapter_state(wrapped, i, shape)}
        for i, (acc, loss) in enumerate(zip(accs, losses, strict=True))
    ]


def _train_round(
    jobs: list[tuple[Task, int]],
    cfg: BuildConfig,
    train_cfg: AdapterTrainConfig,
    device: str,
    out: Path,
    results: dict[tuple[str, int], dict[str, Any]],
    label: str,
    workers: int,
) -> None:
    """Train ``jobs`` in stacked chunks (in ``workers`` processes, see ``run_chunks``); write each
    adapter that beats its last result."""
    chunks = split_chunks(jobs, train_cfg.chunk, workers)
    threads = 1 if workers > 1 else 0

    def args(c: int) -> tuple[Any, ...]:
        name = f"{label} {c + 1}/{len(chunks)}"
        pos = c % workers if workers > 1 else None
        return (out / "base", chunks[c], cfg.lora, train_cfg, cfg.n_eval, cfg.seed, device, threads, name, pos)

    def collect(c: int, res: list[dict[str, Any]]) -> None:
        for (task, seed), r in zip(chunks[c], res, strict=True):
            key = (task.id, seed)
            if key in results and results[key]["accuracy"] >= r["accuracy"]:
                continue
            name = adapter_name(task, seed)
            desc = description_record(task)["canonical"]
            write_peft(out / "adapters" / name, r["state"], cfg.lora, desc, "benchmarks/zoo/text/base")
            results[key] = {"seed": seed, "path": f"adapters/{name}", "accuracy": r["accuracy"],
                            "steps": train_cfg.steps, "per_adapter": train_cfg.per_adapter, "distill": train_cfg.distill,
                            "final_loss": r["final_loss"]}  # fmt: skip
        accs = [r["accuracy"] for r in res]
        print(f"[{label} {c + 1}/{len(chunks)}] mean acc {sum(accs) / len(accs):.3f}, min {min(accs):.3f}", flush=True)

    run_chunks(len(chunks), workers, _train_chunk, args, collect)


def family_table(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for fam in dict.fromkeys(t["family"] for t in tasks):
        ts = [t for t in tasks if t["family"] == fam]
        oracle = [a["accuracy"] for t in ts for a in t["adapters"]]
        base = [t["base_accuracy"] for t in ts]
        rows.append({
            "family": fam, "tasks": len(ts), "heldout_tasks": sum(t["split"] == "heldout" for t in ts),
            "adapters": len(oracle), "oracle_mean": sum(oracle) / len(oracle), "oracle_min": min(oracle),
            "base_mean": sum(base) / len(base), "base_max": max(base),
            "base_coded_mean": sum(t["base_coded_accuracy"] for t in ts) / len(ts),
        })  # fmt: skip
    return rows


def table_markdown(rows: list[dict[str, Any]]) -> str:
    head = "| family | tasks | held-out | adapters | oracle mean | oracle min | base mean | base max | base with code |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['tasks']} | {r['heldout_tasks']} | {r['adapters']} | {r['oracle_mean']:.3f} | "
            f"{r['oracle_min']:.3f} | {r['base_mean']:.3f} | {r['base_max']:.3f} | {r['base_coded_mean']:.3f} |"
        )
    return "\n".join(lines)


def build(
    out: Path | None = None,
    *,
    tiny: bool = False,
    device: str | None = None,
    workers: int | None = None,
    config: BuildConfig | None = None,
    resume_base: bool = False,
) -> dict[str, Any]:
    """Build the zoo into ``out`` (default: this package's folder) and return the manifest.

    ``workers``: processes for adapter training (default: 1 on CUDA or for ``tiny``, else
    ``torch.get_num_threads()``, one thread each).
    """
    cfg = config or (BuildConfig.tiny_config() if tiny else BuildConfig())
    out = Path(out) if out is not None else ZOO_DIR
    device, workers = device_and_workers(cfg.tiny, device, workers)
    t_start = time.time()
    base_done = out / "base" / "model.safetensors"
    resume_base = resume_base and base_done.is_file()
    for old in ("adapters",) if resume_base else ("base", "adapters"):
        shutil.rmtree(out / old, ignore_errors=True)
    for old in ("manifest.json", "RESULTS.md"):
        (out / old).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    tasks = tiny_tasks() if cfg.tiny else all_tasks(cfg.seed)
    tok = CharTokenizer.default()
    if resume_base:  # the base of an interrupted build: same config, pre-training already done
        saved = json.loads((out / "base" / "zoo_pretrain_config.json").read_text())
        if saved != asdict(cfg.pretrain):
            raise ValueError(f"{out / 'base'} was pre-trained with another config: {saved}")
        model, tok = load_base(out / "base", device)
        timings["pretrain_s"] = (
            float(json.loads((out / "base" / "zoo_timings.json").read_text())["pretrain_s"])
            if (out / "base" / "zoo_timings.json").is_file()
            else float("nan")
        )
    else:
        model = build_model(cfg.model, tok, seed=cfg.seed).to(device)
        t0 = time.time()
        pretrain(model, tok, tasks, cfg.pretrain, device)
        timings["pretrain_s"] = time.time() - t0
        save_base(model, cfg.model, tok, out / "base")
        (out / "base" / "zoo_pretrain_config.json").write_text(json.dumps(asdict(cfg.pretrain), indent=2))
        (out / "base" / "zoo_timings.json").write_text(json.dumps({"pretrain_s": timings["pretrain_s"]}))

    t0 = time.time()
    base_acc = evaluate_tasks(model, tok, tasks, n=cfg.n_eval, seed=cfg.seed)
    coded_acc = evaluate_tasks(model, tok, tasks, n=min(cfg.n_eval, 50), with_codes=True, seed=cfg.seed)
    timings["base_eval_s"] = time.time() - t0
    print(f"[base] uncoded max {max(base_acc):.3f}; with codes mean {sum(coded_acc) / len(coded_acc):.3f}", flush=True)

    extra = seed_tasks(tasks, cfg.n_seed_tasks, cfg.seed) if cfg.extra_seeds else []
    jobs = [(t, 0) for t in tasks] + [(t, s) for s in cfg.extra_seeds for t in extra]
    results: dict[tuple[str, int], dict[str, Any]] = {}
    t0 = time.time()
    _train_round(jobs, cfg, cfg.adapters, device, out, results, "adapters", workers)
    for r, rr in enumerate(cfg.retrain, start=1):
        todo = [(t, s) for t, s in jobs if results[(t.id, s)]["accuracy"] < cfg.oracle_bar]
        if not todo:
            break
        names = [adapter_name(t, s) for t, s in todo]
        print(f"[retrain round {r}] {len(todo)} adapters below {cfg.oracle_bar}: {names}", flush=True)
        more = AdapterTrainConfig(
            **{
                **asdict(cfg.adapters),
                "steps": cfg.adapters.steps * rr.steps_factor,
                "distill": rr.distill,
                "per_adapter": rr.per_adapter,
            }
        )
        _train_round(todo, cfg, more, device, out, results, f"retrain {r}", workers)
    timings["adapters_s"] = time.time() - t0

    records = []
    for task, b, c in zip(tasks, base_acc, coded_acc, strict=True):
        adapters = sorted((v for (tid, _), v in results.items() if tid == task.id), key=lambda a: a["seed"])
        records.append({
            "id": task.id, "family": task.family, "params": task.params, "split": task.split,
            **description_record(task),
            "seeds": [a["seed"] for a in adapters], "adapters": adapters,
            "oracle_accuracy": adapters[0]["accuracy"], "base_accuracy": b, "base_coded_accuracy": c,
            "code_tokens": task.codes(),
        })  # fmt: skip
    rows = family_table(records)
    timings["total_s"] = time.time() - t_start
    manifest = {
        "version": MANIFEST_VERSION,
        "kind": "text",
        "base": {"path": "base", "params": count_params(model), "vocab_size": len(tok)},
        "prompt_format": "<bos> input '=' -> output '\\n' (no task code: the adapter supplies the task)",
        "metric": f"exact match on {cfg.n_eval} held-out strings per task, greedy decoding",
        "config": cfg.to_dict(),
        "device": torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else f"cpu ({torch.get_num_threads()} threads)",
        "timings": timings,
        "counts": {
            "tasks": len(tasks),
            "train_tasks": sum(t.split == "train" for t in tasks),
            "heldout_tasks": sum(t.split == "heldout" for t in tasks),
            "adapters": len(results),
        },  # fmt: skip
        "table": rows,
        "tasks": records,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    md = table_markdown(rows)
    (out / "RESULTS.md").write_text(
        f"# Text zoo quality\n\n{manifest['metric']}; oracle = each task's own adapters (all seeds), "
        f"base = no adapter and no task code, base with code = the task's code tokens in the prompt.\n\n"
        f"device: {manifest['device']}; build time {timings['total_s'] / 60:.1f} min\n\n{md}\n"
    )
    print(md, flush=True)
    return manifest
