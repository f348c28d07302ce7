"""A learned linear map of text embeddings that makes descriptions of the same item agree.

Matching a request to the items a library holds (experts of a generator, adapters of a family)
by plain MiniLM cosine ranks by shared words: "encode the text by replacing each letter with
the one 3 after it" sits closer to other "replace …" descriptions than to the Caesar items it
means. Each item comes with several descriptions (the canonical one and paraphrases), so a map
W (d, d) can be fitted for the library at hand: every description, mapped, must be nearer to
the mean of its item's *other* descriptions (leave one out) than to any other item's mean
(InfoNCE at ``temperature``), with W pulled towards the identity (``reg``) so that the words a
query shares with a description still count. Scores are cosines of mapped vectors
(``apply_text_map``); ``generators.library`` compares a request with each expert's mean.

Only the descriptions the library was built from are seen: a request is never among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class TextMapConfig:
    steps: int = 300  # Adam steps over all descriptions at once (0: no map, plain cosine)
    lr: float = 0.01
    temperature: float = 0.05
    reg: float = 1e-3  # weight of ‖W − I‖² (keeps the map near the plain cosine)
    seed: int = 0


def fit_text_map(
    emb: torch.Tensor, owner: torch.Tensor, config: TextMapConfig | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """W (d, d) for description embeddings ``emb`` (m, d) of items ``owner`` (m,) in [0, n).

    Returns W and metrics: leave-one-out top-1 (a description finds its own item among the
    means of the others) before and after, and the loss. Items with a single description are
    keys only.
    """
    import torch
    from torch.nn import functional as F

    cfg = config or TextMapConfig()
    emb = emb.float()
    d = emb.shape[1]
    eye = torch.eye(d)
    n = int(owner.max()) + 1 if owner.numel() else 0
    counts = torch.zeros(n).index_add_(0, owner, torch.ones(len(owner)))
    mask = counts[owner] > 1  # (m,) descriptions that have a sibling to be matched against
    if cfg.steps <= 0 or n < 2 or not bool(mask.any()):
        return eye, {"steps": 0, "loo_top1_before": None, "loo_top1_after": None}

    def logits(w: torch.Tensor) -> torch.Tensor:
        z = F.normalize(emb @ w.T, dim=-1)  # (m, d)
        sums = torch.zeros(n, d).index_add_(0, owner, z)  # (n, d)
        out = z @ F.normalize(sums, dim=-1).T  # (m, n)
        own = (z * F.normalize(sums[owner] - z, dim=-1)).sum(-1)  # (m,) vs own item without itself
        return out.scatter(1, owner[:, None], own[:, None])[mask]  # (m', n)

    def top1(w: torch.Tensor) -> float:
        with torch.no_grad():
            return float((logits(w).argmax(-1) == owner[mask]).float().mean())

    torch.manual_seed(cfg.seed)
    w = torch.nn.Parameter(eye.clone())
    opt = torch.optim.Adam([w], lr=cfg.lr)
    before = top1(eye)
    first = last = 0.0
    for step in range(cfg.steps):
        loss = F.cross_entropy(logits(w) / cfg.temperature, owner[mask]) + cfg.reg * (w - eye).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if step == 0 else first
        last = loss.item()
    w_out = w.detach()
    return w_out, {
        "steps": cfg.steps,
        "loss_first": round(first, 4),
        "loss_last": round(last, 4),
        "loo_top1_before": round(before, 4),
        "loo_top1_after": round(top1(w_out), 4),
    }


def apply_text_map(x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Unit vectors of ``x`` (…, d) mapped by ``w`` (d, d) (plain normalization when ``w`` is None)."""
    from torch.nn import functional as F

    return F.normalize(x.float() if w is None else x.float() @ w.T.float(), dim=-1)
