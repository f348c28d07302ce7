"""LoRA-LEGO: rank-1 units of every adapter clustered into ``rank`` groups, one unit per group.

A LoRA of rank r is a sum of r rank-1 units (Minimal Semantic Units) bⱼ aⱼᵀ. All units of all
adapters (weights and scales folded into b) are put in one pool; each unit is balanced
(‖b‖ = ‖a‖) and its sign fixed (the largest entry of a positive), since (b, a) and (−b, −a) are
the same unit. Units are clustered with seeded k-means (k-means++ start) on the concatenation
[b; a], and each cluster is fused into the best rank-1 approximation of the sum of its units.
The paper averages the cluster's units and rescales the result; the rank-1 SVD of the cluster
sum is the least-squares version of that step. With no more units than ``rank`` the result is
the exact ``cat`` merge. Default rank: the largest input rank.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusion.merge import ModuleInput, StrategyContext, register_strategy
from fusion.merge.exact import cat, factor

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _units(mi: ModuleInput) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced, sign-fixed units: B (n, out), A (n, in)."""
    import torch

    b = torch.cat([u.T for u in mi.ups])  # (n, out)
    a = torch.cat(mi.downs)  # (n, in)
    nb, na = b.norm(dim=1, keepdim=True), a.norm(dim=1, keepdim=True)  # (n, 1)
    mag = (nb * na).sqrt()
    b = torch.where(nb > 0, b / nb.clamp_min(1e-30) * mag, b)
    a = torch.where(na > 0, a / na.clamp_min(1e-30) * mag, a)
    sign = torch.sign(a.gather(1, a.abs().argmax(dim=1, keepdim=True)))  # (n, 1)
    sign[sign == 0] = 1
    return b * sign, a * sign


def kmeans(x: torch.Tensor, k: int, seed: int, iters: int = 20) -> torch.Tensor:
    """Cluster labels (n,) of rows of ``x`` (n, d): k-means++ start, Lloyd iterations."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    centers = [x[int(torch.randint(n, (1,), generator=g))]]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centers)).min(dim=1).values ** 2  # (n,)
        if float(d2.sum()) <= 0:
            break
        centers.append(x[int(torch.multinomial(d2 / d2.sum(), 1, generator=g))])
    c = torch.stack(centers)  # (k, d)
    labels = torch.zeros(n, dtype=torch.long)
    for _ in range(iters):
        labels = torch.cdist(x, c).argmin(dim=1)  # (n,)
        new = torch.stack([x[labels == j].mean(0) if bool((labels == j).any()) else c[j] for j in range(len(c))])
        if torch.allclose(new, c):
            break
        c = new
    return labels


def lego(mi: ModuleInput, ctx: StrategyContext) -> tuple[torch.Tensor, torch.Tensor, bool]:
    import torch

    rank = ctx.rank or max(a.shape[0] for a in mi.downs)
    b, a = _units(mi)  # (n, out), (n, in)
    if b.shape[0] <= rank:
        return cat(mi, ctx)
    labels = kmeans(torch.cat([b, a], dim=1), rank, mi.seed, int(ctx.options.get("iters", 20)))
    downs, ups = [], []
    for j in labels.unique().tolist():
        sel = labels == j
        d, u = factor(b[sel].T @ a[sel], 1, mi.seed)  # cluster sum (out, in) → (1, in), (out, 1)
        downs.append(d)
        ups.append(u)
    return torch.cat(downs), torch.cat(ups, dim=1), False


register_strategy("lego", lego, ("iters",))
