"""Training a weight encoder against text embeddings: symmetric InfoNCE, learned temperature.

Each adapter comes with the descriptions it may be found by (a canonical one plus
paraphrases); every step samples one per adapter. Adapters of the same task (several seeds)
are all positives of each other's texts. Batches are built family by family, so the other
tasks of the same family (the hardest negatives) share a batch. A validation split of whole
tasks is held out; the checkpoint kept is the one with the best validation recall.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from encoders.weight.config import ModuleTypeSpec, WeightEncoderConfig
from encoders.weight.features import Factors, TypeBatch, collate
from encoders.weight.model import WeightEncoder


@dataclass
class TrainItem:
    factors: Factors  # the adapter's factors (from features.adapter_factors)
    texts: list[str]  # descriptions it should be found by; texts[0] is the canonical one
    task: str  # adapters with the same task are positives of each other
    group: str = ""  # task family: its tasks are batched together as hard negatives
    name: str = ""


@dataclass
class TrainConfig:
    epochs: int = 300
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    val_fraction: float = 0.15  # share of tasks held out for validation (0: none)
    val_paraphrases: int = 0  # per task, texts (never the canonical one) held out as validation queries
    eval_every: int = 5  # epochs
    patience: int = 60  # epochs without validation gain before stopping
    raw_query_weight: float = 0.0  # with a query head: weight of the same loss on the prompts as encoded
    seed: int = 0
    device: str | None = None


def _slice(batch: list[TypeBatch], idx: torch.Tensor) -> list[TypeBatch]:
    return [TypeBatch(tb.down[idx], tb.up[idx], tb.present[idx], tb.slot_ids) for tb in batch]


def embed_all(model: WeightEncoder, batch: list[TypeBatch], chunk: int = 256) -> torch.Tensor:
    """(n, out_dim) embeddings of a collated set, in chunks, no grad."""
    model.eval()
    n = batch[0].present.shape[0]
    outs = []
    with torch.no_grad():
        for i in range(0, n, chunk):
            outs.append(model(_slice(batch, torch.arange(i, min(n, i + chunk)))).cpu())
    return torch.cat(outs) if outs else torch.zeros(0, model.cfg.out_dim)


def recall_at(query: np.ndarray, gallery: np.ndarray, query_task: list[str], gallery_task: list[str],
              ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:  # fmt: skip
    """Recall@k and MRR of text queries (q, dim) against adapter vectors (g, dim): a hit is an
    adapter of the query's task."""
    sims = query @ gallery.T  # (q, g)
    order = np.argsort(-sims, axis=1)
    gt = np.asarray(gallery_task)
    out: dict[str, float] = {}
    first = []
    for qi, task in enumerate(query_task):
        hits = np.nonzero(gt[order[qi]] == task)[0]
        first.append(int(hits[0]) if hits.size else len(gt))
    first_arr = np.asarray(first)
    for k in ks:
        out[f"recall@{k}"] = float((first_arr < k).mean()) if len(first) else 0.0
    out["mrr"] = float((1.0 / (first_arr + 1)).mean()) if len(first) else 0.0
    return out


def _batches(items: list[TrainItem], idx: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """Family-grouped batches: shuffle families, tasks inside them, then cut."""
    by_group: dict[str, dict[str, list[int]]] = {}
    for i in idx:
        by_group.setdefault(items[i].group, {}).setdefault(items[i].task, []).append(i)
    groups = list(by_group.values())
    rng.shuffle(groups)
    order: list[int] = []
    for g in groups:
        tasks = list(g.values())
        rng.shuffle(tasks)
        for t in tasks:
            order.extend(t)
    cuts = [order[i : i + size] for i in range(0, len(order), size)]
    rng.shuffle(cuts)
    return [c for c in cuts if len(c) > 1]


def split_tasks(items: list[TrainItem], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, validation indices), whole tasks held out, spread over groups."""
    if fraction <= 0:
        return list(range(len(items))), []
    rng = random.Random(f"val-{seed}")
    by_group: dict[str, list[str]] = {}
    for it in items:
        tasks = by_group.setdefault(it.group, [])
        if it.task not in tasks:
            tasks.append(it.task)
    val: set[str] = set()
    for tasks in by_group.values():
        rng.shuffle(tasks)
        val.update(tasks[: int(round(len(tasks) * fraction))])
    tr = [i for i, it in enumerate(items) if it.task not in val]
    va = [i for i, it in enumerate(items) if it.task in val]
    return tr, va


def train_encoder(
    items: list[TrainItem],
    family: str,
    encode_texts: Callable[[list[str]], np.ndarray],
    *,
    model_cfg: dict[str, Any] | None = None,
    cfg: TrainConfig | None = None,
    text_model: str = "",
    vocab: tuple[list[ModuleTypeSpec], list[str]],
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> tuple[WeightEncoder, dict[str, Any]]:
    """Train on ``items``; returns the best model and its metrics.

    ``encode_texts`` maps strings to unit vectors (n, dim) in the target space (the text encoder).
    ``vocab`` is the (module types, slots) the items' factors were taken with (``features.vocabulary``).
    """
    cfg = cfg or TrainConfig()
    if len(items) < 4:
        raise ValueError(f"need at least 4 described adapters to train a weight encoder, got {len(items)}")
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    types, slots = vocab
    texts = sorted({t for it in items for t in it.texts})
    tvec = np.asarray(encode_texts(texts), dtype=np.float32)  # (T, dim)
    tid = {t: i for i, t in enumerate(texts)}
    wcfg = WeightEncoderConfig(family=family, types=types, slots=slots, out_dim=int(tvec.shape[1]),
                               text_model=text_model, **(model_cfg or {}))  # fmt: skip
    model = WeightEncoder(wcfg).to(device)
    data = collate([it.factors for it in items], wcfg)  # every adapter, once
    tv = torch.from_numpy(tvec).to(device)
    train_idx, val_idx = split_tasks(items, cfg.val_fraction, cfg.seed)
    held = held_out_texts(items, cfg.val_paraphrases)  # task → validation texts
    train_texts = [[t for t in it.texts if t not in held.get(it.task, ())] for it in items]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    task_ids = {t: i for i, t in enumerate(sorted({it.task for it in items}))}
    task_of = torch.tensor([task_ids[it.task] for it in items])
    best: tuple[tuple[float, float], dict[str, Any], dict[str, torch.Tensor]] | None = None
    since_best, t0, history = 0, time.time(), []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        losses = []
        for b in _batches(items, train_idx, cfg.batch_size, rng):
            idx = torch.tensor(b)
            pick = [tid[rng.choice(train_texts[i])] for i in b]
            w = model(_slice(data, idx))  # (B, dim)
            same = (task_of[idx][:, None] == task_of[idx][None, :]).float().to(device)  # (B, B) positives
            target = same / same.sum(1, keepdim=True)
            loss = _info_nce(model, w, model.headed(tv[pick]), target)
            if cfg.raw_query_weight and model.query_head is not None:
                raw = nn.functional.normalize(tv[pick], dim=-1)  # (B, dim)
                loss = loss + cfg.raw_query_weight * _info_nce(model, w, raw, target)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
        if epoch % cfg.eval_every and epoch != cfg.epochs:
            continue
        m = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else 0.0}
        m.update(_evaluate(model, data, items, val_idx, tv, tid, held))
        history.append(m)
        if val_idx:
            key = (m["val_recall@5"], m["val_recall@1"])
        elif held:
            key = (m["para_recall@1"], m["para_recall@5"])
        else:
            key = (float(epoch), 0.0)
        if best is None or key > best[0]:
            best = (key, m, {k: v.detach().clone() for k, v in model.state_dict().items()})
            since_best = 0
        else:
            since_best += cfg.eval_every
        if progress:
            progress(epoch, cfg.epochs, m)
        if (val_idx or held) and since_best >= cfg.patience:
            break
    assert best is not None
    model.load_state_dict(best[2])
    model.eval()
    metrics = {
        "family": family,
        "adapters": len(items),
        "tasks": len(task_ids),
        "train_adapters": len(train_idx),
        "val_adapters": len(val_idx),
        "texts": len(texts),
        "best": best[1],
        "history": history,
        "train_seconds": round(time.time() - t0, 2),
        "train_config": asdict(cfg),
    }
    return model.cpu(), metrics


def _info_nce(model: WeightEncoder, w: torch.Tensor, t: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of adapter vectors w (B, dim) against text vectors t (B, dim); target (B, B)
    spreads each row's probability over its positives."""
    logits = model.logit_scale.exp().clamp(max=100) * w @ t.T  # (B, B)
    return 0.5 * (
        torch.sum(-target * logits.log_softmax(1), 1).mean() + torch.sum(-target.T * logits.T.log_softmax(1), 1).mean()
    )


def held_out_texts(items: list[TrainItem], k: int) -> dict[str, list[str]]:
    """Per task, its last ``k`` texts (never the canonical first one, and only when two remain)."""
    out: dict[str, list[str]] = {}
    if k <= 0:
        return out
    for it in items:
        if it.task not in out and len(it.texts) >= k + 2:
            out[it.task] = it.texts[-k:]
    return out


def _evaluate(model: WeightEncoder, data: list[TypeBatch], items: list[TrainItem], val_idx: list[int],
              tv: torch.Tensor, tid: dict[str, int], held: dict[str, list[str]]) -> dict[str, float]:  # fmt: skip
    """Text → adapter recall over the whole gallery, for validation tasks' texts (and all tasks' canonical texts)."""
    g = embed_all(model, data).numpy()  # (n, dim)
    with torch.no_grad():
        tv = model.encode_query(tv)  # (T, dim): prompts as search scores them
    tasks = [it.task for it in items]
    out: dict[str, float] = {}
    canon_q = tv[[tid[it.texts[0]] for it in items]].cpu().numpy()
    for k, v in recall_at(canon_q, g, tasks, tasks).items():
        out[f"all_{k}"] = v
    if held:  # texts of training tasks that training never sampled
        pq = [(tid[t], task) for task, ts in held.items() for t in ts]
        qv = tv[[a for a, _ in pq]].cpu().numpy()
        for k, v in recall_at(qv, g, [b for _, b in pq], tasks).items():
            out[f"para_{k}"] = v
    if val_idx:
        q = [(tid[t], items[i].task) for i in val_idx for t in items[i].texts]
        qv = tv[[a for a, _ in q]].cpu().numpy()
        for k, v in recall_at(qv, g, [b for _, b in q], tasks).items():
            out[f"val_{k}"] = v
    return out
