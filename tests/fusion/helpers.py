"""Synthetic adapters for the fusion tests (real ``LoraAdapter`` objects, seeded)."""

from __future__ import annotations

import torch

from registry.formats.canonical import LoraAdapter, LoraModule, lora_scale


def module(name: str, out: int, inp: int, rank: int, *, alpha: float | None = None, rslora: bool = False,
           conv: tuple[int, int] | None = None, seed: int = 0) -> LoraModule:  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    if conv is None:
        down = torch.randn(rank, inp, generator=g) / inp**0.5  # (r, in)
        up = torch.randn(out, rank, generator=g) / rank**0.5  # (out, r)
        kind = "linear"
    else:
        down = torch.randn(rank, inp, *conv, generator=g) / inp**0.5  # (r, in, kh, kw)
        up = torch.randn(out, rank, 1, 1, generator=g) / rank**0.5  # (out, r, 1, 1)
        kind = "conv"
    return LoraModule(name, down, up, lora_scale(alpha, rank, rslora=rslora), alpha, kind)  # type: ignore[arg-type]


def adapter(specs: dict[str, tuple[int, int]], rank: int, *, seed: int = 0, alpha: float | None = None,
            rslora: bool = False, family: str = "zoo-text", fmt: str = "peft",
            convs: dict[str, tuple[int, int, int, int]] | None = None) -> LoraAdapter:  # fmt: skip
    """Linear modules ``name → (out, in)`` and conv modules ``name → (out, in, kh, kw)``."""
    mods = {}
    for i, (name, (out, inp)) in enumerate(specs.items()):
        mods[name] = module(name, out, inp, rank, alpha=alpha, rslora=rslora, seed=seed * 100 + i)
    for i, (name, (out, inp, kh, kw)) in enumerate((convs or {}).items()):
        mods[name] = module(name, out, inp, rank, alpha=alpha, rslora=rslora, conv=(kh, kw), seed=seed * 100 + 50 + i)
    return LoraAdapter(modules=mods, family=family, format=fmt, base_model="base", use_rslora=rslora,
                       metadata={"name": f"synthetic-{seed}"})  # fmt: skip


LLM = {"model.layers.0.q": (16, 12), "model.layers.0.v": (8, 12)}
