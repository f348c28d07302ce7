"""Pieces both zoo builders share: seeds, schedules, stacked-LoRA bookkeeping, extra-seed picks."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import multiprocessing
import random
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Protocol, Self, TypeVar

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
def round_to_storage(wrapped: dict[str, Any], shape: Any) -> None:
    """Round the factors to the shape's storage dtype (``shape.dtype``) in place, so evaluation sees
    what is written."""
    dt = getattr(torch, shape.dtype)
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


class FromDict:
    """Mixin of the zoos' config dataclasses: ``from_dict`` reads a saved config (``from_known_fields``)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return from_known_fields(cls, d)


def device_and_workers(tiny: bool, device: str | None, workers: int | None) -> tuple[str, int]:
    """The build's device (CUDA when there is one) and adapter-training processes (1 on CUDA or for a
    tiny build, else ``torch.get_num_threads()``, one thread each), unless given."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if workers is None:
        workers = 1 if (tiny or device.startswith("cuda")) else max(1, torch.get_num_threads())
    return device, workers


def split_chunks(jobs: list[D], chunk: int, workers: int) -> list[list[D]]:
    """``jobs`` in stacked-training chunks of at most ``chunk``, as many as a multiple of ``workers``."""
    n_chunks = math.ceil(math.ceil(len(jobs) / chunk) / workers) * workers
    size = math.ceil(len(jobs) / n_chunks)
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def run_chunks(n: int, workers: int, train: Callable[..., Any], args: Callable[[int], tuple[Any, ...]],
               collect: Callable[[int, Any], None]) -> None:  # fmt: skip
    """``train(*args(c))`` for chunks ``c < n``, in ``workers`` spawned processes (here when ``workers``
    ≤ 1 or there is one chunk); ``collect(c, result)`` as each finishes.

    On CPU, separate single-threaded processes keep their speed when other programs share the
    machine, where one process with several OpenMP threads stalls at every parallel region."""
    if workers <= 1 or n == 1:
        for c in range(n):
            collect(c, train(*args(c)))
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(train, *args(c)): c for c in range(n)}
        for fut in as_completed(futures):
            collect(futures[fut], fut.result())
