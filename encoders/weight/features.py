"""Adapters → padded factor tensors per module type, the weight encoder's input.

Only ΔW = scale · B·A matters downstream: the model multiplies probes through the factors
(B·(A·P)), never looks at A or B alone, so the result is unchanged by rescaling A↔B, by
rotating or permuting rank components and by re-expressing ΔW at another rank. Ranks are
padded with zeros to the largest rank in the batch (zero components add nothing to ΔW).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from encoders.weight.config import ModuleTypeSpec, WeightEncoderConfig, module_type

if TYPE_CHECKING:  # pragma: no cover
    from registry.formats.canonical import LoraAdapter, LoraModule


@dataclass
class Factors:
    """The factors of one adapter, one entry per slot it covers: name → (down (r, in), up·scale (out, r))."""

    modules: dict[str, tuple[torch.Tensor, torch.Tensor]]
    skipped: list[str]  # module names the encoder has no slot for (or whose shape does not fit)


@dataclass
class TypeBatch:
    """All slots of one module type for a batch of adapters."""

    down: torch.Tensor  # (n, S, R, in) zero-padded A
    up: torch.Tensor  # (n, S, out, R) zero-padded B·scale
    present: torch.Tensor  # (n, S) bool: the adapter covers this slot
    slot_ids: torch.Tensor  # (S,) position ids of these slots


def _matrix_factors(m: LoraModule) -> tuple[torch.Tensor, torch.Tensor]:
    """(A (r, in·kh·kw), B·scale (out, r)) in float32."""
    a = m.down.float().reshape(m.rank, -1)  # (r, in·kh·kw)
    b = m.up.float().reshape(m.up.shape[0], m.rank) * float(m.scale)  # (out, r)
    return a, b


def adapter_factors(adapter: LoraAdapter, cfg: WeightEncoderConfig) -> Factors:
    """Pick the modules the encoder knows; the rest is reported in ``skipped``."""
    slots = cfg.slot_index()
    types = {t.key: t for t in cfg.types}
    modules: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    skipped: list[str] = []
    for name, m in adapter.modules.items():
        spec = types.get(module_type(name))
        if name not in slots or spec is None:
            skipped.append(name)
            continue
        a, b = _matrix_factors(m)
        if a.shape[1] != spec.in_features or b.shape[0] != spec.out_features:
            skipped.append(name)
            continue
        modules[name] = (a, b)
    return Factors(modules, skipped)


def collate(batch: Sequence[Factors], cfg: WeightEncoderConfig) -> list[TypeBatch]:
    """Stack a batch per module type, padding ranks with zeros and marking absent slots."""
    slot_ids = cfg.slot_index()
    by_type: dict[str, list[str]] = {}
    for s in cfg.slots:
        by_type.setdefault(module_type(s), []).append(s)
    out: list[TypeBatch] = []
    n = len(batch)
    for spec in cfg.types:
        names = by_type.get(spec.key, [])
        if not names:
            out.append(_empty(spec, n))
            continue
        rank = max([f.modules[s][0].shape[0] for f in batch for s in names if s in f.modules], default=1)
        down = torch.zeros(n, len(names), rank, spec.in_features)  # (n, S, R, in)
        up = torch.zeros(n, len(names), spec.out_features, rank)  # (n, S, out, R)
        present = torch.zeros(n, len(names), dtype=torch.bool)  # (n, S)
        for i, f in enumerate(batch):
            for j, s in enumerate(names):
                if s in f.modules:
                    a, b = f.modules[s]
                    down[i, j, : a.shape[0]] = a
                    up[i, j, :, : b.shape[1]] = b
                    present[i, j] = True
        ids = torch.tensor([slot_ids[s] for s in names], dtype=torch.long)
        out.append(TypeBatch(down, up, present, ids))
    return out


def _empty(spec: ModuleTypeSpec, n: int) -> TypeBatch:
    return TypeBatch(
        torch.zeros(n, 0, 1, spec.in_features),
        torch.zeros(n, 0, spec.out_features, 1),
        torch.zeros(n, 0, dtype=torch.bool),
        torch.zeros(0, dtype=torch.long),
    )


def vocabulary(adapters: Sequence[LoraAdapter]) -> tuple[list[ModuleTypeSpec], list[str]]:
    """Module types and slots seen in training adapters (a type's shape is its first sighting;
    modules of another shape under the same type are left out)."""
    types: dict[str, ModuleTypeSpec] = {}
    slots: set[str] = set()
    for ad in adapters:
        for name, m in ad.modules.items():
            a, b = _matrix_factors(m)
            key = module_type(name)
            spec = types.setdefault(key, ModuleTypeSpec(key, int(a.shape[1]), int(b.shape[0])))
            if (spec.in_features, spec.out_features) == (a.shape[1], b.shape[0]):
                slots.add(name)
    return sorted(types.values(), key=lambda t: t.key), sorted(slots, key=_natural_key)


def _natural_key(name: str) -> list[object]:
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
