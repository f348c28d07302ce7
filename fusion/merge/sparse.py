"""TIES, DARE (linear and TIES) and magnitude pruning, on ΔW (the PEFT ``*_svd`` family).

Each adapter's weighted ΔWᵢ is sparsified (TIES / magnitude: keep the ``density`` fraction of
largest entries; DARE: keep each entry with probability ``density`` and rescale by 1/density,
seeded per module), then combined (linear: sum; TIES: elect a sign per entry and sum the
entries that agree with it, as PEFT's ``disjoint_merge``), and re-factored at ``rank`` by
randomized SVD (default: the sum of the input ranks, capped by the matrix size).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusion.merge import ModuleInput, StrategyContext, register_strategy
from fusion.merge.exact import factor

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _density(ctx: StrategyContext) -> float:
    from fusion.errors import FusionError

    d = float(ctx.options.get("density", 0.5))
    if not 0.0 < d <= 1.0:
        raise FusionError(f"density must be in (0, 1], got {d}")
    return d


def magnitude_mask(t: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``density`` fraction of entries of largest magnitude (ties kept)."""
    import torch

    k = int(round(density * t.numel()))
    if k >= t.numel():
        return torch.ones_like(t, dtype=torch.bool)
    if k <= 0:
        return torch.zeros_like(t, dtype=torch.bool)
    thresh = t.abs().flatten().kthvalue(t.numel() - k + 1).values
    return t.abs() >= thresh


def dare(t: torch.Tensor, density: float, gen: torch.Generator) -> torch.Tensor:
    """Drop entries with probability 1 − density, rescale the rest by 1/density."""
    import torch

    keep = torch.rand(t.shape, generator=gen) < density
    return t * keep / density


def elect_and_merge(stack: torch.Tensor, method: str) -> torch.Tensor:
    """TIES sign election over dim 0 of ``stack`` (k, out, in), then the sum of agreeing entries."""
    import torch

    from fusion.errors import FusionError

    if method == "total":
        sign = torch.sign(stack.sum(dim=0))  # (out, in)
    elif method == "frequency":
        sign = torch.sign(torch.sign(stack).sum(dim=0))
    else:
        raise FusionError(f"majority_sign must be 'total' or 'frequency', got {method!r}")
    agree = torch.sign(stack) == sign  # (k, out, in)
    return (stack * agree).sum(dim=0)  # (out, in)


def _rank(mi: ModuleInput, ctx: StrategyContext) -> int:
    return ctx.rank or sum(a.shape[0] for a in mi.downs)


def _gen(mi: ModuleInput) -> torch.Generator:
    import torch

    return torch.Generator().manual_seed(mi.seed)


def ties(mi: ModuleInput, ctx: StrategyContext) -> tuple[torch.Tensor, torch.Tensor, bool]:
    import torch

    d = _density(ctx)
    stack = torch.stack([t * magnitude_mask(t, d) for t in mi.deltas()])  # (k, out, in)
    merged = elect_and_merge(stack, str(ctx.options.get("majority_sign", "total")))
    return (*factor(merged, _rank(mi, ctx), mi.seed), False)


def dare_linear(mi: ModuleInput, ctx: StrategyContext) -> tuple[torch.Tensor, torch.Tensor, bool]:
    import torch

    d, g = _density(ctx), _gen(mi)
    merged = torch.stack([dare(t, d, g) for t in mi.deltas()]).sum(dim=0)  # (out, in)
    return (*factor(merged, _rank(mi, ctx), mi.seed), False)


def dare_ties(mi: ModuleInput, ctx: StrategyContext) -> tuple[torch.Tensor, torch.Tensor, bool]:
    import torch

    d, g = _density(ctx), _gen(mi)
    stack = torch.stack([dare(t, d, g) for t in mi.deltas()])  # (k, out, in)
    merged = elect_and_merge(stack, str(ctx.options.get("majority_sign", "total")))
    return (*factor(merged, _rank(mi, ctx), mi.seed), False)


def magnitude_prune(mi: ModuleInput, ctx: StrategyContext) -> tuple[torch.Tensor, torch.Tensor, bool]:
    import torch

    d = _density(ctx)
    merged = torch.stack([t * magnitude_mask(t, d) for t in mi.deltas()]).sum(dim=0)  # (out, in)
    return (*factor(merged, _rank(mi, ctx), mi.seed), False)


register_strategy("ties", ties, ("density", "majority_sign"))
register_strategy("dare_linear", dare_linear, ("density",))
register_strategy("dare_ties", dare_ties, ("density", "majority_sign"))
register_strategy("magnitude_prune", magnitude_prune, ("density",))
