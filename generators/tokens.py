"""Per-module tokens: the part of the learned generators that scales to thousands of modules.

Every module of a family becomes one token: a learned embedding of its *type* (the last name
segment(s) with block indices stripped: ``to_q``, ``mlp.down_proj``, ``conv1``) plus a learned
embedding of its *depth* (index among the modules of its type). A shared MLP reads
``[condition; token]`` and one linear head per module *shape* (out × in·kh·kw) writes the
module's normalized canonical factors. Parameters grow with the number of distinct types,
depths and shapes, not with the number of modules.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from generators.canonical import Layout

_INDEX = re.compile(r"\.\d+(?=\.|$)")


def module_type(name: str) -> str:
    """``unet.down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q`` → ``unet.down_blocks.attentions.transformer_blocks.attn1.to_q``."""
    return _INDEX.sub("", name)


def token_ids(layout: Layout) -> tuple[list[int], list[int], list[str], list[int]]:
    """Per module: type index, depth index; the type names; and the shape group index."""
    types: list[str] = []
    depth_count: dict[str, int] = {}
    t_ids, d_ids = [], []
    for spec in layout.modules:
        t = module_type(spec.name)
        if t not in types:
            types.append(t)
        t_ids.append(types.index(t))
        d_ids.append(depth_count.get(t, 0))
        depth_count[t] = depth_count.get(t, 0) + 1
    shapes = list(dict.fromkeys(s.shape_key for s in layout.modules))
    s_ids = [shapes.index(s.shape_key) for s in layout.modules]
    return t_ids, d_ids, types, s_ids


class ModuleTokens(nn.Module):
    """(batch, cond) → per-module normalized factors, one head per module shape."""

    def __init__(self, layout: Layout, cond_dim: int, width: int, depth_max: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        t_ids, d_ids, types, s_ids = token_ids(layout)
        self.layout = layout
        self.register_buffer("t_ids", torch.tensor(t_ids), persistent=False)
        self.register_buffer("d_ids", torch.tensor([min(d, depth_max - 1) for d in d_ids]), persistent=False)
        self.type_emb = nn.Embedding(len(types), width)
        self.depth_emb = nn.Embedding(depth_max, width)
        nn.init.normal_(self.type_emb.weight, std=0.5)
        nn.init.normal_(self.depth_emb.weight, std=0.5)
        # First layer of the shared trunk split in two: W·[cond; tok] = W_c·cond + W_t·tok, so the
        # condition is projected once per adapter, not once per module.
        self.cond_in = nn.Linear(cond_dim, width)
        self.tok_in = nn.Linear(width, width, bias=False)
        self.trunk = nn.Sequential(nn.GELU(), nn.Dropout(dropout), nn.Linear(width, width), nn.GELU())
        shapes = list(dict.fromkeys(s.shape_key for s in layout.modules))
        r = layout.rank
        sizes = {s.shape_key: r * (s.in_flat + s.out_features) for s in layout.modules}
        heads = [nn.Linear(width, sizes[k]) for k in shapes]
        for h in heads:
            nn.init.normal_(h.weight, std=0.02 / width**0.5)
            nn.init.zeros_(h.bias)
        self.heads = nn.ModuleList(heads)
        self.groups = [[i for i, g in enumerate(s_ids) if g == j] for j in range(len(shapes))]

    def forward(self, cond: torch.Tensor) -> list[torch.Tensor]:
        """cond (b, c) → per shape group (b, G, r·(in+out)) normalized factors (modules in ``self.groups`` order)."""
        tok = self.type_emb(self.t_ids) + self.depth_emb(self.d_ids)  # (M, w)
        h = self.trunk(self.cond_in(cond)[:, None] + self.tok_in(tok)[None])  # (b, M, w)
        return [head(h[:, idx]) for head, idx in zip(self.heads, self.groups, strict=True)]


class GroupStats:
    """Normalization statistics and targets stacked per shape group (modules of equal shape)."""

    def __init__(self, layout: Layout, groups: list[list[int]], stats: dict[str, torch.Tensor]) -> None:
        self.layout = layout
        self.groups = groups
        self.specs = [[layout.modules[i] for i in idx] for idx in groups]
        names = [[s.name for s in specs] for specs in self.specs]
        self.a_mean = [torch.stack([stats[f"norm.{n}.A_mean"] for n in ns]) for ns in names]  # (G, r, in)
        self.b_mean = [torch.stack([stats[f"norm.{n}.B_mean"] for n in ns]) for ns in names]  # (G, out, r)
        self.std = [torch.cat([stats[f"norm.{n}.std"] for n in ns]) for ns in names]  # (G,)
        self.energy = [torch.cat([stats[f"norm.{n}.energy"] for n in ns]) for ns in names]  # (G,)

    def stack_targets(
        self, factors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per group (A (n, G, r, in), B (n, G, out, r)) of stacked training factors."""
        out = []
        for specs in self.specs:
            out.append(
                (
                    torch.stack([factors[s.name][0] for s in specs], 1),
                    torch.stack([factors[s.name][1] for s in specs], 1),
                )
            )
        return out

    def denormalize(self, flat: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per group (b, G, r·(in+out)) → (A (b, G, r, in), B (b, G, out, r))."""
        r = self.layout.rank
        out = []
        for g, y in enumerate(flat):
            spec = self.specs[g][0]
            b, gn = y.shape[:2]
            std = self.std[g][None, :, None, None]
            a = y[..., : r * spec.in_flat].reshape(b, gn, r, spec.in_flat) * std + self.a_mean[g]
            bb = y[..., r * spec.in_flat :].reshape(b, gn, r, spec.out_features).transpose(2, 3) * std + self.b_mean[g]
            out.append((a, bb))
        return out

    def to_modules(
        self, groups: list[tuple[torch.Tensor, torch.Tensor]], row: int = 0
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Row ``row`` of grouped factors → module name → (A (r, in), B (out, r))."""
        return {name: (a[row], b[row]) for name, (a, b) in self.by_module(groups).items()}

    def by_module(
        self, groups: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Grouped factors of a batch → module name → (A (b, r, in), B (b, out, r))."""
        out = {}
        for specs, (a, b) in zip(self.specs, groups, strict=True):
            for j, s in enumerate(specs):
                out[s.name] = (a[:, j], b[:, j])
        return out

    def delta_loss(
        self, pred: list[tuple[torch.Tensor, torch.Tensor]], target: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        """Mean over modules of ‖ΔŴ − ΔW‖² / E_m (E_m: the module's mean ‖ΔW‖² over training)."""
        total = torch.zeros(())
        for g, ((a, b), (ta, tb)) in enumerate(zip(pred, target, strict=True)):
            # ‖BA − B'A'‖² without forming ΔW: ‖[B, −B']·[A; A']‖² = Σ (DᵀD) ⊙ (FFᵀ)
            d = torch.cat([b, -tb], dim=3)  # (n, G, out, 2r)
            f = torch.cat([a, ta], dim=2)  # (n, G, 2r, in)
            e = ((d.transpose(2, 3) @ d) * (f @ f.transpose(2, 3))).sum((2, 3))  # (n, G)
            total = total + (e.mean(0) / self.energy[g]).sum()
        return total / len(self.layout.modules)


def fit_start(data: Any, seed: int) -> tuple[Any, dict[str, Any]]:
    """What every learned generator's ``fit`` starts with: seed torch, a numpy RNG for batches,
    and the per-module normalization statistics of the training factors."""
    import numpy as np

    from generators.canonical import norm_stats

    torch.manual_seed(seed)
    return np.random.default_rng(seed), norm_stats(data.factors)
