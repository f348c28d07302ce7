"""The expert library a generator keeps in its checkpoint: one adapter per training task.

Experts are matched to a request by the cosine between the request and the mean of the
expert's descriptions, both through a learned map of the text embeddings (``encoders.text_map``,
fitted on the library's own descriptions, stored as ``lib.text_map``); checkpoints without one
use the plain best cosine with any of the expert's descriptions.

Canonical factors are stored int8 with one scale per expert and rank component (the rows of
A and the columns of B carry √sᵢ each, so per-component scales fit them well), beside every
description embedding of every expert and its owner index. A text-zoo library of 160 rank-4
adapters takes about 6.6 MB this way (13 MB as float16).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from generators.base import Factors, TrainData


def experts_of(data: TrainData) -> list[int]:
    """One item per task: the first of each task in name order (seed 0 has no ``_s`` suffix)."""
    first: dict[str, int] = {}
    for i in sorted(range(len(data.names)), key=lambda i: data.names[i]):
        first.setdefault(data.tasks[i], i)
    return sorted(first.values())


def _quant(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 values and float32 scales of ``x`` reduced over every axis but 0 and ``dim``."""
    import torch

    red = [d for d in range(1, x.dim()) if d != dim]
    scale = x.abs().amax(dim=red, keepdim=True).clamp_min(1e-12) / 127.0
    return torch.round(x / scale).to(torch.int8), scale.float()


def library_state(
    data: TrainData, idx: list[int] | None = None, map_steps: int = 0
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Checkpoint tensors and info of the library built from ``data`` (experts ``idx``);
    ``map_steps`` > 0 fits the description map (``encoders.text_map``) on the experts' descriptions."""
    import numpy as np
    import torch

    from encoders.text_map import TextMapConfig, fit_text_map

    idx = experts_of(data) if idx is None else idx
    state: dict[str, torch.Tensor] = {}
    for name, (a, b) in data.factors.items():
        qa, sa = _quant(a[idx], 1)  # (E, r, in) int8, (E, r, 1)
        qb, sb = _quant(b[idx], 2)  # (E, out, r) int8, (E, 1, r)
        state[f"lib.{name}.A"], state[f"lib.{name}.A_scale"] = qa, sa
        state[f"lib.{name}.B"], state[f"lib.{name}.B_scale"] = qb, sb
    embs = [data.desc_emb[i] for i in idx]
    state["lib.emb"] = torch.from_numpy(np.concatenate(embs)).float()  # (m, d)
    state["lib.owner"] = torch.tensor([j for j, e in enumerate(embs) for _ in range(len(e))], dtype=torch.long)
    info: dict[str, Any] = {"experts": [data.names[i] for i in idx], "expert_tasks": [data.tasks[i] for i in idx]}
    if data.steps:
        info["expert_steps"] = [data.steps[i] for i in idx]  # steps each expert chains (generators.steps)
    if map_steps > 0:
        w, metrics = fit_text_map(state["lib.emb"], state["lib.owner"], TextMapConfig(steps=map_steps))
        state["lib.text_map"] = w.half()  # (d, d)
        info["text_map"] = metrics
    if data.steps and data.part_emb and any(data.steps[i] > 1 for i in idx):
        lib = Library(state, info["experts"], [])
        info["expert_chains"] = chain_signatures(lib, info["expert_steps"], [data.part_emb[i] for i in idx])
    return state, info


def chain_signatures(lib: Library, steps: list[int], part_emb: list[list[Any]]) -> list[list[str] | None]:
    """Per expert that chains steps, the one-step experts its steps match: each description that
    splits into as many steps as the expert chains (``generators.steps.split_steps``) votes for its
    parts' nearest one-step experts (as a sorted list; the order a description names them in is not
    always the order they run), and most votes win. None for one-step experts and for chains no
    description splits. A request whose steps match the same experts is one the library holds."""
    from collections import Counter

    import torch

    one = torch.tensor([s == 1 for s in steps])
    out: list[list[str] | None] = []
    for j, n in enumerate(steps):
        votes: Counter[tuple[str, ...]] = Counter()
        for emb in part_emb[j] if n > 1 else []:
            if len(emb) == n:
                picks = lib.step_picks(torch.from_numpy(emb).float(), one)
                votes[tuple(sorted(lib.names[i] for i, _ in picks))] += 1
        out.append(list(votes.most_common(1)[0][0]) if votes else None)
    return out


class Library:
    """Read side: expert scores for a query embedding and expert factors."""

    def __init__(self, state: dict[str, torch.Tensor], names: list[str], modules: list[str]) -> None:
        import torch

        from encoders.text_map import apply_text_map

        self.names = names
        self.text_map = state["lib.text_map"].float() if "lib.text_map" in state else None  # (d, d) or None
        self.emb = apply_text_map(state["lib.emb"], self.text_map)  # (m, d), unit rows
        self.owner = state["lib.owner"].long()  # (m,)
        sums = torch.zeros(len(names), self.emb.shape[1]).index_add_(0, self.owner, self.emb)  # (E, d)
        self.protos = torch.nn.functional.normalize(sums, dim=-1)  # (E, d): each expert's mean description
        self.factors: Factors = {}
        for mod in modules:
            a = state[f"lib.{mod}.A"].float() * state[f"lib.{mod}.A_scale"]  # (E, r, in)
            b = state[f"lib.{mod}.B"].float() * state[f"lib.{mod}.B_scale"]  # (E, out, r)
            self.factors[mod] = (a, b)

    def __len__(self) -> int:
        return len(self.names)

    def scores(self, emb: torch.Tensor) -> torch.Tensor:
        """(E,) cosine of the query (d,) with each expert: with a description map, with the mean of
        the expert's mapped descriptions (top-1 expert of the suite's validation requests: text 0.75
        → 0.90, image 0.64 → 0.71 against the best single description); without one, the best
        cosine with any of its descriptions (what checkpoints before the map were measured with)."""
        import torch

        from encoders.text_map import apply_text_map

        q = apply_text_map(emb, self.text_map)  # (d,)
        if self.text_map is not None:
            return self.protos @ q
        sims = self.emb @ q  # (m,)
        out = torch.full((len(self.names),), -2.0)
        return out.scatter_reduce(0, self.owner, sims, reduce="amax")

    def step_picks(self, embs: torch.Tensor, one: torch.Tensor) -> list[tuple[int, float]]:
        """Per row of ``embs`` (n, d), the best expert among those ``one`` (E,) marks, and its score."""
        out = []
        for e in embs:
            s = self.scores(e).masked_fill(~one, -2.0)  # (E,)
            out.append((int(s.argmax()), float(s.max())))
        return out

    def expert(self, i: int) -> Factors:
        return {m: (a[i], b[i]) for m, (a, b) in self.factors.items()}

    def mix(self, idx: list[int], weights: torch.Tensor, rank: int) -> Factors:
        """Exact Σ wᵢ ΔW of experts ``idx`` at ``rank``."""
        from generators.canonical import combine

        sub = {m: (a[idx], b[idx]) for m, (a, b) in self.factors.items()}
        return combine(sub, weights, rank)

    def top(self, emb: torch.Tensor, k: int, temperature: float) -> tuple[list[int], torch.Tensor]:
        """Top-``k`` experts and their softmax(score / temperature) weights."""
        import torch

        s = self.scores(emb)
        k = min(k, len(self.names))
        vals, idx = torch.topk(s, k)
        return [int(i) for i in idx], torch.softmax(vals / temperature, dim=0)
