"""Exact-match evaluation: fixed held-out input strings per task and batched greedy decoding.

Prompts are grouped by length, so a batch never needs padding or an attention mask; decoding
uses the KV cache. With a ``Routing`` (stacked adapters) each row may use a different adapter,
so every adapter of the zoo is evaluated in a few large batches.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import TYPE_CHECKING

import torch

from benchmarks.zoo.text.tasks import MAX_OUT, Task

if TYPE_CHECKING:
    from benchmarks.zoo.text.lora import Routing
    from benchmarks.zoo.text.model import CharTokenizer

N_EVAL = 200  # held-out strings per task


def eval_inputs(task: Task, n: int = N_EVAL, seed: int = 0) -> list[str]:
    """``n`` distinct inputs for ``task``, the same on every machine; training never samples them.

    The list for a smaller ``n`` is a prefix of the list for a larger one.
    """
    rng = random.Random(f"eval-{seed}-{task.id}")
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        s = task.sample_input(rng, exclude=seen)
        seen.add(s)
        out.append(s)
    return out


@torch.no_grad()
def greedy_decode(
    model: torch.nn.Module,
    prompts: list[list[int]],
    tokenizer: CharTokenizer,
    *,
    routing: Routing | None = None,
    adapters: list[int] | None = None,
    max_new: int = MAX_OUT + 1,
    batch_size: int = 2048,
) -> list[str]:
    """Greedy continuation of every prompt until end-of-line; ``adapters[i]`` routes row ``i``."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_len[len(p)].append(i)
    out: list[str] = [""] * len(prompts)
    for idx_all in by_len.values():
        for start in range(0, len(idx_all), batch_size):
            idx = idx_all[start : start + batch_size]
            ids = torch.tensor([prompts[i] for i in idx], device=device)  # (b, prompt_len)
            if routing is not None:
                assert adapters is not None, "routing needs an adapter index per prompt"
                routing.group = None
                routing.rows = torch.tensor([adapters[i] for i in idx], device=device)  # (b,)
            cache = DynamicCache()
            gen = torch.empty(len(idx), 0, dtype=torch.long, device=device)  # (b, generated)
            done = torch.zeros(len(idx), dtype=torch.bool, device=device)  # (b,)
            step_in = ids
            for _ in range(max_new):
                res = model(input_ids=step_in, cache=cache, use_cache=True, logits_to_keep=1)
                cache = res.cache
                nxt = res.logits[:, -1].argmax(-1)  # (b,)
                nxt = torch.where(done, torch.full_like(nxt, tokenizer.eos_id), nxt)
                gen = torch.cat([gen, nxt[:, None]], dim=1)
                done |= nxt == tokenizer.eos_id
                if bool(done.all()):
                    break
                step_in = nxt[:, None]  # (b, 1)
            for row, i in enumerate(idx):
                out[i] = tokenizer.decode(gen[row].tolist())
    return out


def exact_match(predictions: list[str], targets: list[str]) -> float:
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    return sum(p == t for p, t in zip(predictions, targets, strict=True)) / max(len(targets), 1)


def evaluate_tasks(
    model: torch.nn.Module,
    tokenizer: CharTokenizer,
    tasks: list[Task],
    *,
    n: int = N_EVAL,
    with_codes: bool = False,
    routing: Routing | None = None,
    adapters: list[int] | None = None,
    seed: int = 0,
) -> list[float]:
    """Exact match of ``model`` on each task's held-out inputs.

    ``with_codes`` puts the task's code tokens in the prompt (how the base was pre-trained);
    with ``routing``, task ``j`` is decoded through stacked adapter ``adapters[j]``.
    """
    prompts, targets, rows, owner = [], [], [], []
    for j, task in enumerate(tasks):
        for s in eval_inputs(task, n, seed):
            prompts.append(tokenizer.prompt(s, task.codes() if with_codes else ()))
            targets.append(task.apply(s))
            rows.append(adapters[j] if adapters is not None else 0)
            owner.append(j)
    preds = greedy_decode(model, prompts, tokenizer, routing=routing, adapters=rows if routing is not None else None)
    hits = [0] * len(tasks)
    for p, t, j in zip(preds, targets, owner, strict=True):
        hits[j] += p == t
    return [h / n for h in hits]
