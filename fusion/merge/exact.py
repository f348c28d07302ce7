"""``cat`` (exact weighted ΔW sum) and ``svd`` (the sum re-factored at a target rank)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusion.merge import ModuleInput, StrategyContext, register_strategy

if TYPE_CHECKING:  # pragma: no cover
    import torch


def cat(mi: ModuleInput, ctx: StrategyContext) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Concatenate rank components: [w₁s₁B₁ … wₖsₖBₖ] @ [A₁; …; Aₖ] = Σ wᵢ sᵢ BᵢAᵢ exactly."""
    import torch

    down = torch.cat(mi.downs, dim=0)  # (Σrᵢ, in·kh·kw)
    up = torch.cat(mi.ups, dim=1)  # (out, Σrᵢ)
    return down, up, True


def factor(
    mat: torch.Tensor, rank: int, seed: int, *, oversample: int = 8, niter: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-``rank`` factors (down (r, in), up (out, r)) of ``mat`` (out, in) by randomized SVD.

    Halko et al. range finder (``torch.svd_lowrank``) under a fixed seed; full SVD when the
    requested rank plus oversampling reaches the matrix's smaller side. Singular values are split
    evenly (√σ on each side) so neither factor dominates.
    """
    import torch

    r = max(1, min(rank, *mat.shape))
    q = r + oversample
    if q >= min(mat.shape):
        u, s, vh = torch.linalg.svd(mat, full_matrices=False)
        v = vh.T
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            u, s, v = torch.svd_lowrank(mat, q=q, niter=niter)  # u (out, q), s (q,), v (in, q)
    sq = s[:r].sqrt()
    up = u[:, :r] * sq  # (out, r)
    down = sq[:, None] * v[:, :r].T  # (r, in)
    return down.contiguous(), up.contiguous()


def svd(mi: ModuleInput, ctx: StrategyContext) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """LoRA-Squeeze: the exact sum, re-factored at ``rank`` (default: the largest input rank)."""
    rank = ctx.rank or max(a.shape[0] for a in mi.downs)
    down, up = factor(
        mi.exact(),
        rank,
        mi.seed,
        oversample=int(ctx.options.get("oversample", 8)),
        niter=int(ctx.options.get("niter", 2)),
    )
    return down, up, False


register_strategy("cat", cat)
register_strategy("svd", svd, ("oversample", "niter"))
