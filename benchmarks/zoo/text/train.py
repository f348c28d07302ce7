"""Training: pre-train the base on coded tasks + plain copy; train many LoRAs at once on uncoded tasks.

Sequences are ``<bos> [codes] input = output \\n``; the loss covers the output and the end-of-line
only. Batches are right-padded: with causal attention, padding after a sequence never affects
it, so no attention mask is needed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from benchmarks.zoo.common import lr_at  # noqa: F401 (used below, re-exported)
from benchmarks.zoo.text.evaluate import eval_inputs
from benchmarks.zoo.text.lora import LoraShape, Routing, StackedLoRALinear, inject, lora_parameters, stable_seed
from benchmarks.zoo.text.tasks import LOWER, MAX_LEN, MIN_LEN, Task

if TYPE_CHECKING:
    from benchmarks.zoo.text.model import CharTokenizer


@dataclass
class PretrainConfig:
    """Base pre-training schedule (saved as ``zoo_pretrain_config.json`` beside the checkpoint)."""

    steps: int = 5500  # optimizer steps
    batch_size: int = 256  # sequences per step
    lr: float = 3e-3  # peak AdamW learning rate (linear warm-up, cosine decay to 10 %)
    warmup: int = 200  # warm-up steps
    weight_decay: float = 0.01  # AdamW weight decay
    copy_fraction: float = 0.2  # share of sequences with no code: identity copy
    hard_fraction: float = 0.5  # share of coded sequences drawn in proportion to each task's running loss
    seed: int = 0  # data and init seed

    def __post_init__(self) -> None:
        if not 0.0 <= self.copy_fraction < 1.0:
            raise ValueError(f"copy_fraction must be in [0, 1), got {self.copy_fraction}")
        if not 0.0 <= self.hard_fraction <= 1.0:
            raise ValueError(f"hard_fraction must be in [0, 1], got {self.hard_fraction}")
        if self.steps <= 0 or self.batch_size <= 0:
            raise ValueError(f"steps and batch_size must be positive: {self}")


@dataclass
class AdapterTrainConfig:
    """Schedule for one round of stacked LoRA training."""

    steps: int = 200  # optimizer steps
    per_adapter: int = 10  # sequences per adapter per step
    chunk: int = 64  # adapters trained together (one stacked batch)
    lr: float = 5e-3  # peak Adam learning rate (linear warm-up, cosine decay to 10 %)
    warmup: int = 20  # warm-up steps
    distill: float = 1.0  # weight of context distillation (hidden states of the base given the task code); 0 = off

    def __post_init__(self) -> None:
        if min(self.steps, self.per_adapter, self.chunk) <= 0:
            raise ValueError(f"steps, per_adapter and chunk must be positive: {self}")
        if self.distill < 0:
            raise ValueError(f"distill must be >= 0, got {self.distill}")


def encode(
    tokenizer: CharTokenizer, text: str, target: str, codes: list[str] | tuple[str, ...] = ()
) -> tuple[list[int], int]:
    """Token ids of the full sequence and the index of ``=`` (the first position whose next token is trained)."""
    prompt = tokenizer.prompt(text, codes)
    return prompt + tokenizer.encode(target) + [tokenizer.eos_id], len(prompt) - 1


def collate(
    seqs: list[tuple[list[int], int]], pad_id: int, device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids ``(batch, seq)``, next-token targets ``(batch, seq-1)`` and their mask."""
    T = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), T - 1)
    for i, (s, start) in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, start : len(s) - 1] = 1.0
    ids = ids.to(device)
    return ids, ids[:, 1:], mask.to(device)


def token_losses(model: torch.nn.Module, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=ids[:, :-1]).logits  # (batch, seq-1, vocab)
    return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (batch, seq-1)


def distill_losses(
    model: torch.nn.Module,
    student: list[tuple[list[int], int]],
    teacher: list[tuple[list[int], int]],
    offsets: list[int],
    pad_id: int,
    device: str,
    routing: Routing,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Next-token losses of the student and its relative hidden-state distance to the teacher.

    Context distillation: the teacher is the plain base reading the task code before the input
    (how it was pre-trained); the student is the base with LoRA and no code. Student position
    ``p`` (after ``<bos>``) holds the same token as teacher position ``p + offset``. Returns
    ``(token CE, distance, CE mask, distance mask)``, each ``(batch, seq-1)``.
    """
    ids, targets, mask = collate(student, pad_id, device)
    t_ids, _, _ = collate(teacher, pad_id, device)
    routing.enabled = False
    with torch.no_grad():
        t_hidden = model(input_ids=t_ids[:, :-1], output_hidden_states=True).hidden_states  # L+1 x (batch, T_t-1, d)
    routing.enabled = True
    out = model(input_ids=ids[:, :-1], output_hidden_states=True)
    ce = F.cross_entropy(out.logits.transpose(1, 2), targets, reduction="none")  # (batch, seq-1)
    pos = torch.arange(ids.shape[1] - 1, device=device)[None, :]  # (1, seq-1)
    t_pos = (pos + torch.tensor(offsets, device=device)[:, None]).clamp(max=t_ids.shape[1] - 2)  # (batch, seq-1)
    dist = torch.zeros_like(ce)
    layers = range(1, len(t_hidden) - 1)  # block outputs; the last (normed) state is covered by the CE
    for layer in layers:
        t = t_hidden[layer].gather(1, t_pos[..., None].expand(-1, -1, t_hidden[layer].shape[-1]))  # (batch, seq-1, d)
        dist = dist + ((out.hidden_states[layer] - t) ** 2).mean(-1) / (t**2).mean(-1).clamp(min=1e-6)
    lengths = torch.tensor([len(s) for s, _ in student], device=device)
    valid = ((pos >= 1) & (pos < lengths[:, None] - 1)).float()  # (batch, seq-1): real tokens after <bos>
    return ce, dist / max(len(layers), 1) * valid, mask, valid


def random_copy_input(rng: random.Random) -> str:
    s = "".join(rng.choice(LOWER) for _ in range(rng.randint(MIN_LEN, MAX_LEN)))
    return "".join(c.upper() if rng.random() < 0.5 else c for c in s) if rng.random() < 0.4 else s


def pretrain(
    model: torch.nn.Module,
    tokenizer: CharTokenizer,
    tasks: list[Task],
    cfg: PretrainConfig,
    device: str,
    on_step: Callable[[int], None] | None = None,
) -> list[float]:
    """Pre-train on coded tasks mixed with uncoded identity copy; returns the losses.

    Coded sequences pick their task uniformly or, for ``hard_fraction`` of them, in proportion to
    the task's running loss, so slow tasks (sorting, deduplication, compositions) get more data.
    """
    rng = random.Random(f"pretrain-{cfg.seed}")
    held = {t.id: set(eval_inputs(t)) for t in tasks}  # never train on evaluation strings
    running = [5.0] * len(tasks)  # running loss per task
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    losses: list[float] = []
    bar = tqdm(range(cfg.steps), desc="pretrain base", unit="step")
    for step in bar:
        seqs, which = [], []
        for _ in range(cfg.batch_size):
            if rng.random() < cfg.copy_fraction:
                s = random_copy_input(rng)
                seqs.append(encode(tokenizer, s, s))
                which.append(-1)
                continue
            j = (
                rng.choices(range(len(tasks)), weights=running)[0]
                if rng.random() < cfg.hard_fraction
                else rng.randrange(len(tasks))
            )
            t = tasks[j]
            s = t.sample_input(rng, exclude=held[t.id])
            seqs.append(encode(tokenizer, s, t.apply(s), t.codes()))
            which.append(j)
        ids, targets, mask = collate(seqs, tokenizer.pad_id, device)
        tok = token_losses(model, ids, targets) * mask  # (batch, seq-1)
        loss = tok.sum() / mask.sum()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.steps, cfg.warmup, cfg.lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        rows = (tok.sum(1) / mask.sum(1)).tolist()  # mean loss per sequence
        for j, r in zip(which, rows, strict=True):
            if j >= 0:
                running[j] = 0.9 * running[j] + 0.1 * max(r, 1e-3)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
        if on_step is not None:
            on_step(step)
    model.eval()
    return losses


def train_adapters(
    model: torch.nn.Module,
    tokenizer: CharTokenizer,
    jobs: list[tuple[Task, int]],
    shape: LoraShape,
    cfg: AdapterTrainConfig,
    device: str,
    desc: str = "train adapters",
    position: int | None = None,
) -> tuple[dict[str, StackedLoRALinear], list[float]]:
    """Train one LoRA per ``(task, seed)`` job, all stacked in one batch, on uncoded prompts.

    The loss is the output tokens' cross-entropy plus ``cfg.distill`` times the context-distillation
    distance (``distill_losses``), which turns the long plateaus of some tasks (rotations,
    prepending a word) into steady descent. Each adapter's loss is its own mean and Adam is
    elementwise, so the adapters train independently of each other. Returns the wrapped layers
    (still injected in ``model``; ``lora.remove`` restores it) and the final per-adapter
    cross-entropies.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    routing, wrapped = inject(model, len(jobs), shape, [stable_seed(t.id, s) for t, s in jobs])
    params = lora_parameters(wrapped)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    rngs = [random.Random(f"adapter-{t.id}-{s}") for t, s in jobs]
    held = [set(eval_inputs(t)) for t, _ in jobs]
    routing.enabled, routing.group, routing.rows = True, cfg.per_adapter, None
    k = cfg.per_adapter
    last = torch.zeros(len(jobs))
    bar = tqdm(range(cfg.steps), desc=desc, unit="step", leave=False, position=position)
    model.train()
    n = len(jobs)
    for step in bar:
        seqs, teacher, offsets = [], [], []
        for (task, _), rng, ex in zip(jobs, rngs, held, strict=True):
            for _ in range(k):
                s = task.sample_input(rng, exclude=ex)
                seqs.append(encode(tokenizer, s, task.apply(s)))
                teacher.append(encode(tokenizer, s, task.apply(s), task.codes()))
                offsets.append(len(task.codes()))
        if cfg.distill > 0:
            ce, dist, mask, valid = distill_losses(model, seqs, teacher, offsets, tokenizer.pad_id, device, routing)
            d = dist.sum(1).view(n, k).sum(1) / valid.sum(1).view(n, k).sum(1).clamp(min=1)  # (n,)
        else:
            ids, targets, mask = collate(seqs, tokenizer.pad_id, device)
            ce, d = token_losses(model, ids, targets), torch.zeros(n, device=device)
        ce_task = (ce * mask).sum(1).view(n, k).sum(1) / mask.sum(1).view(n, k).sum(1)  # (n,)
        per_adapter = ce_task + cfg.distill * d  # (n,)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.steps, cfg.warmup, cfg.lr)
        opt.zero_grad(set_to_none=True)
        per_adapter.sum().backward()
        opt.step()
        last = 0.9 * last + 0.1 * ce_task.detach().cpu() if step else ce_task.detach().cpu()
        if step % 10 == 0:
            bar.set_postfix(mean=f"{last.mean():.4f}", worst=f"{last.max():.4f}")
    model.eval()
    return wrapped, last.tolist()
