"""Pieces both zoo builders share: seeds, schedules, stacked-LoRA bookkeeping, extra-seed picks."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

import torch
from torch import nn


class _Split(Protocol):
    id: str
    family: str
    split: str


T = TypeVar("T", bound=_Split)
D = TypeVar("D")


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts, the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little") & (2**63 - 1)


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up, then cosine decay to 10 % of ``peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def lora_parameters(wrapped: dict[str, Any]) -> list[nn.Parameter]:
    """The stacked factors (``A``, ``B``) of every wrapped layer."""
    return [p for w in wrapped.values() for p in (w.A, w.B)]


@torch.no_grad()
def round_to_storage(wrapped: dict[str, Any], dtype: str) -> None:
    """Round the factors to the storage dtype in place, so evaluation sees what is written."""
    dt = getattr(torch, dtype)
    for w in wrapped.values():
        w.A.copy_(w.A.to(dt).float())
        w.B.copy_(w.B.to(dt).float())


def adapter_name(item_id: str, seed: int) -> str:
    """Folder name of an adapter: seed 0 has no suffix."""
    return item_id if seed == 0 else f"{item_id}_s{seed}"


def spread_over_families(items: Iterable[T], n: int, label: str) -> list[T]:
    """``n`` training items for extra seeds, taken round-robin over families (shuffled by ``label``)."""
    rng = random.Random(label)
    by_family: dict[str, list[T]] = {}
    for it in items:
        if it.split == "train":
            by_family.setdefault(it.family, []).append(it)
    for v in by_family.values():
        rng.shuffle(v)
    out: list[T] = []
    while len(out) < n and any(by_family.values()):
        for fam in sorted(by_family):
            if by_family[fam] and len(out) < n:
                out.append(by_family[fam].pop())
    return out


def check_lora_shape(r: int, targets: tuple[str, ...], valid: tuple[str, ...], dtype: str) -> None:
    """The checks every zoo's ``LoraShape`` makes: positive rank, known targets, a storage dtype."""
    if r <= 0:
        raise ValueError(f"rank must be positive, got {r}")
    unknown = set(targets) - set(valid)
    if unknown:
        raise ValueError(f"unknown target modules {sorted(unknown)}; valid: {valid}")
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")


def from_known_fields(cls: type[D], d: dict[str, Any]) -> D:
    """A dataclass from a saved dict, ignoring keys it does not have (configs saved by newer code)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in d.items() if k in names})
