"""Training of the committed zoo gates: ``python -m benchmarks.fusion train image|text``.

Image (``fusion/checkpoints/zoo-image``): the calibrated gate (``fusion.gate.calibrated``), learned
on the zoo's *training* combos only: every training combo's palette + texture adapters composed
and distilled towards the combo's own adapter on the combo's procedural images; the library is
the palettes and textures those combos use. Held-out combos (and their adapters) are never seen.
``--hold-val`` leaves out the validation combos as well (every third training combo in manifest
order, ``VAL_STRIDE``), for choosing the recipe (``benchmarks.fusion_calibrated val``).

``--method autolora`` trains the earlier AutoLoRA gate instead (its distillation loss did not fall;
see ``benchmarks/results/fusion_notes.md``), on the zoo's *training* tasks only: each training combo's palette + texture adapters plus one random distractor, taught
to behave like the combo's own adapter on the combo's procedural images, with a hinge keeping
the distractor quiet; and each palette / texture adapter with one distractor, taught to behave
like the adapter alone. Requests are the tasks' training paraphrases. Held-out combos, their
adapters' paraphrases and held-out paraphrases are never seen.

Text (``fusion/checkpoints/zoo-text``): the router map, InfoNCE between the training
paraphrases of the training tasks and the canonical descriptions of the training tasks.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
IMAGE_ZOO = REPO / "benchmarks" / "zoo" / "image"
TEXT_ZOO = REPO / "benchmarks" / "zoo" / "text"
CHECKPOINTS = REPO / "fusion" / "checkpoints"


VAL_STRIDE = 3  # validation combos: every third training combo in manifest order (10 of 32)
CALIBRATION = {"steps": 800, "per_step": 4, "batch": 4, "pool": 48, "lr": 0.02}  # chosen on validation combos
# the route's weights signal (fusion.compose.head_scores): relevance + 0.5 × (c − 0.1174), i.e. on from a
# combined 0.40 at the committed route's bias; chosen on validation requests (benchmarks/fusion_image_route.py)
HEAD_ROUTE = {"head_scale": 0.5, "head_offset": 0.1174}


def _save(gate: Any, folder: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """The gate's config and weights in ``folder``, then its metrics with the checkpoint's size."""
    from fusion.gate import save_gate

    save_gate(gate, folder)
    metrics["size_bytes"] = (folder / "model.safetensors").stat().st_size
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def training_singles(tasks: dict[str, Any]) -> list[str]:
    """The zoo's single adapters (palettes, textures, shapes) of the training split, in manifest order."""
    return [t for t in tasks if tasks[t]["family"] in ("palette", "texture", "shape") and tasks[t]["split"] == "train"]


def validation_combos(zoo: Any) -> list[str]:
    from benchmarks.fusion import heldout_combos

    return heldout_combos(zoo, "train")[::VAL_STRIDE][:10]


ROUTE = {"steps": 300, "lr": 0.01, "reg": 0.03}  # the route's recipe (chosen on validation combos)


def fit_calibrated_route(zoo: Any, gate: Any, combos: list[str], **recipe: Any) -> dict[str, Any]:
    """Train the gate's route on the training paraphrases (never a held-out one) of ``combos`` (asking for
    their palette and texture) and of every single adapter (asking for itself), against the canonical
    descriptions of all single adapters (palettes, textures, shapes)."""
    from encoders.text import get_text_encoder
    from fusion.compose import clauses
    from fusion.gate.train import fit_route

    tasks = zoo.tasks
    singles = training_singles(tasks)
    row = {t: i for i, t in enumerate(singles)}
    texts: list[str] = []
    asked: list[list[int]] = []
    for tid in [*combos, *singles]:
        t = tasks[tid]
        want = [row[t["params"]["palette"]], row[t["params"]["texture"]]] if tid in combos else [row[tid]]
        for text in [p["text"] for p in t["paraphrases"] if p["split"] == "train"]:
            texts.append(text)
            asked.append(want)
    enc = get_text_encoder()
    keys = torch.as_tensor(enc.encode([tasks[t]["canonical"] for t in singles]), dtype=torch.float32)  # (m, d)
    requests = [torch.as_tensor(enc.encode(clauses(q)), dtype=torch.float32) for q in texts]  # each (c, d)
    metrics = fit_route(gate, requests, keys, asked, **{**ROUTE, **recipe})
    metrics["route_requests"] = len(texts)
    return metrics


def train_calibrated_gate(out: Path | None = None, steps: int | None = None, hold_val: bool = False) -> dict[str, Any]:
    from benchmarks.fusion import ImageZoo, heldout_combos
    from benchmarks.fusion_zip import zoo_sampler
    from fusion.gate.config import GateConfig
    from fusion.gate.train import CalibrationExample
    from fusion.gate.train import train_calibrated_gate as train

    torch.set_num_threads(2)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    zoo = ImageZoo()
    combos = heldout_combos(zoo, "train")
    if hold_val:
        val = set(validation_combos(zoo))
        combos = [c for c in combos if c not in val]
    parts = {c: (zoo.tasks[c]["params"]["palette"], zoo.tasks[c]["params"]["texture"]) for c in combos}
    library = sorted({a for pair in parts.values() for a in pair})
    examples = [CalibrationExample(parts=[zoo.adapter(p), zoo.adapter(x)], teacher=zoo.adapter(c),
                                   sample=zoo_sampler(zoo, p, x), name=c) for c, (p, x) in parts.items()]  # fmt: skip
    cfg = GateConfig(kind="image", family="zoo-image", method="calibrated", steps=20, guidance=4.0, **HEAD_ROUTE)
    recipe = {**CALIBRATION, **({"steps": steps} if steps is not None else {})}
    gate, metrics = train(zoo.pipe, [zoo.adapter(a) for a in library], library, examples, cfg, log=print, **recipe)
    metrics.update(fit_calibrated_route(zoo, gate, combos))
    metrics["examples_from"] = "training combos" + (" except the validation combos" if hold_val else "")
    metrics["combos"] = combos
    metrics["total_seconds"] = round(time.perf_counter() - t0, 1)
    return _save(gate, out or CHECKPOINTS / "zoo-image", metrics)


def train_image_gate(out: Path | None = None, steps: int | None = None) -> dict[str, Any]:
    from benchmarks.fusion import ImageZoo
    from benchmarks.fusion_zip import zoo_sampler
    from fusion.compose import similarity
    from fusion.gate.config import GateConfig
    from fusion.gate.train import ImageGateExample
    from fusion.gate.train import train_image_gate as train

    torch.set_num_threads(1)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    zoo = ImageZoo()
    tasks = zoo.tasks
    train_paraphrase = {tid: [p["text"] for p in t["paraphrases"] if p["split"] == "train"] for tid, t in tasks.items()}
    singles = training_singles(tasks)
    rng = random.Random(0)

    examples = []
    for tid, t in tasks.items():
        if t["split"] != "train" or t["family"] not in ("combo", "palette", "texture") or not train_paraphrase[tid]:
            continue
        params = t["params"]
        parts = [params[k] for k in ("palette", "texture") if k in params]
        d = rng.choice([s for s in singles if s not in parts])
        ids = [*parts, d]
        req = rng.choice(train_paraphrase[tid])
        scores = similarity(req, [tasks[i]["canonical"] for i in ids])
        examples.append(ImageGateExample(
            adapters=[zoo.adapter(i) for i in ids], scores=scores, teacher=[zoo.adapter(tid)],
            sample=zoo_sampler(zoo, params.get("palette"), params.get("texture")), quiet=[len(ids) - 1],
        ))  # fmt: skip
    cfg = GateConfig(kind="image", family="zoo-image", steps=20, guidance=4.0)
    gate, metrics = train(zoo.pipe, examples, cfg, steps=steps or 150, batch=8, lr=0.005, log=print)
    metrics["examples_from"] = "training combos, palettes and textures (one random distractor each)"
    metrics["total_seconds"] = round(time.perf_counter() - t0, 1)
    return _save(gate, out or CHECKPOINTS / "zoo-image", metrics)


def train_text_gate(out: Path | None = None, steps: int | None = None) -> dict[str, Any]:
    from encoders.text import get_text_encoder
    from fusion.gate.config import GateConfig
    from fusion.gate.train import train_text_router

    torch.set_num_threads(1)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    manifest = json.loads((TEXT_ZOO / "manifest.json").read_text())
    tasks = manifest["tasks"]
    train = [t for t in tasks if t["split"] == "train"]
    enc = get_text_encoder()

    def emb(texts: list[str]) -> torch.Tensor:
        return torch.as_tensor(enc.encode(texts), dtype=torch.float32)

    keys_train = emb([t["canonical"] for t in train])
    q_text, labels = [], []
    for i, t in enumerate(train):
        for p in t["paraphrases"]:
            if p["split"] == "train":
                q_text.append(p["text"])
                labels.append(i)
    cfg = GateConfig(kind="text", family="zoo-text", temperature=0.05, text_dim=int(keys_train.shape[1]))
    gate, metrics = train_text_router(emb(q_text), torch.tensor(labels), keys_train, cfg, steps=steps or 300)
    # top-1 among all tasks' canonical descriptions, for held-out paraphrases (never trained on)
    keys_all = emb([t["canonical"] for t in tasks])
    hq, hl = [], []
    for i, t in enumerate(tasks):
        for p in t["paraphrases"]:
            if p["split"] == "heldout":
                hq.append(p["text"])
                hl.append(i)
    hq_e, hl_t = emb(hq), torch.tensor(hl)
    with torch.no_grad():
        raw = torch.nn.functional.normalize(hq_e, dim=-1) @ torch.nn.functional.normalize(keys_all, dim=-1).T
        metrics["heldout_paraphrase_top1_all_tasks_raw"] = float((raw.argmax(-1) == hl_t).float().mean())
        metrics["heldout_paraphrase_top1_all_tasks_trained"] = float(
            (gate.scores(hq_e, keys_all).argmax(-1) == hl_t).float().mean()
        )
    metrics["n_train_queries"] = len(q_text)
    metrics["n_heldout_queries"] = len(hq)
    metrics["total_seconds"] = round(time.perf_counter() - t0, 1)
    return _save(gate, out or CHECKPOINTS / "zoo-text", metrics)
