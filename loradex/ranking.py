"""Hybrid scores and the priors that re-rank a search's pool (``Searcher._ranked``), and the verdict over it.

Pure functions over (score, id, cosines) lists; importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from loradex.relevance import Calibration
from loradex.types import SearchHit

MIN_SPREAD = 0.1  # cosine spread below which a signal counts as uninformative for a query
# How much each signal counts in hybrid search. The weight encoder is trained for its family's
# adapters and separates sibling tasks the generic text encoder puts close together, so it leads;
# metadata text still breaks ties and finds adapters of tasks the encoder never saw. Chosen for plain
# text-encoder cosines; a registry text map carries its own (``encoders.registry_text_map``).
SIGNAL_WEIGHTS = {"weights": 0.7, "text": 0.3}
RERANK_POOL = 10  # hybrid hits re-ranked by description precision (``rerank_by_precision``), whatever k is
# hybrid hits of that pool lose this much score per step their description names more or fewer than the
# request does (``rerank_by_steps``): 0.5 of a standardised unit, the best of 0.1 / 0.25 / 0.5 / 1.0 by MRR on
# training-task requests of keywords/everyday/jargon (benchmarks/results/retrieval_steps.md)
STEP_PENALTY = 0.5
MIN_PRECISION_SPREAD = 0.05  # precision spread below which it cannot reorder the pool


def fuse(signals: dict[str, dict[int, float]], weights: dict[str, float] | None = None,
         reference: set[int] | None = None) -> dict[int, float]:  # fmt: skip
    """Hybrid score: per signal, cosines standardised over the reference pool (``reference``: the
    same candidates whatever k asks for, so an adapter's score does not depend on k; default: all
    scored), then a weighted mean (``weights``, default ``SIGNAL_WEIGHTS``; a registry with a text
    map uses its map's, ``Searcher.signal_weights``) over the signals an adapter has.
    Standardising puts the weight encoder's wide cosines and the text encoder's narrow ones on one
    scale, so a signal that singles out one adapter is not drowned by one that finds everything
    roughly alike; the spread is floored at ``MIN_SPREAD`` so a signal that is flat for this query
    cannot reorder the other."""
    weights = SIGNAL_WEIGHTS if weights is None else weights
    num: dict[int, float] = {}
    den: dict[int, float] = {}
    for kind, scores in signals.items():
        if not scores:
            continue
        w = weights.get(kind, 1.0)
        vals = [v for i, v in scores.items() if reference is None or i in reference] or list(scores.values())
        mean = sum(vals) / len(vals)
        std = max((sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5, MIN_SPREAD)
        for i, v in scores.items():
            num[i] = num.get(i, 0.0) + w * (v - mean) / std
            den[i] = den.get(i, 0.0) + w
    return {i: num[i] / den[i] for i in num}


def description_precision(prompt_tokens: Any, description_tokens: Any) -> float:
    """How much of a description the prompt asks for: the mean, over the description's word pieces,
    of each one's best cosine with a word piece of the prompt (BERTScore precision). An adapter that
    does more than was asked ("swap the case, then reverse" for "swap the case") scores lower than
    one that does just that, where the sentence cosines of both are close."""
    if len(prompt_tokens) == 0 or len(description_tokens) == 0:
        return 0.0
    return float((description_tokens @ prompt_tokens.T).max(axis=1).mean())  # (desc tokens, prompt tokens)


def rerank_by_precision(ranked: list[tuple[float, int, Any]], precision: dict[int, float],
                        weight: float) -> list[tuple[float, int, Any]]:  # fmt: skip
    """``ranked`` (best first) with the top ``RERANK_POOL``'s scores raised by ``weight`` × their
    description precision standardised over that pool (spread floored at ``MIN_PRECISION_SPREAD``);
    the rest keep their order below the pool's weakest adjustment. Re-sorted."""
    pool = [t for t in ranked[:RERANK_POOL] if t[1] in precision]
    if weight <= 0 or len(pool) < 2:
        return ranked
    vals = [precision[i] for _, i, _ in pool]
    mean = sum(vals) / len(vals)
    std = max((sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5, MIN_PRECISION_SPREAD)
    lift = {i: weight * (precision[i] - mean) / std for _, i, _ in pool}
    floor = min(lift.values())
    out = [(score + lift.get(i, floor), i, parts) for score, i, parts in ranked]
    out.sort(key=lambda t: (-t[0], t[1]))
    return out


def rerank_by_steps(ranked: list[tuple[float, int, Any]], steps: dict[int, int], asked: int,
                    penalty: float | None = None) -> list[tuple[float, int, Any]]:  # fmt: skip
    """``ranked`` (best first) with each of ``steps``' adapters (id → the steps its description names,
    ``generators.steps.split_steps``) lowered by ``penalty`` per step more or fewer than ``asked``:
    "shift letters +1" asks one step, and an adapter that shifts and also rotates does more than
    that. Re-sorted; adapters not in ``steps`` keep their scores. ``penalty``: ``STEP_PENALTY``."""
    penalty = STEP_PENALTY if penalty is None else penalty
    return lowered(ranked, {i: penalty * abs(n - asked) for i, n in steps.items()})


def lowered(ranked: list[tuple[float, int, Any]], drops: dict[int, float]) -> list[tuple[float, int, Any]]:
    """``ranked`` (best first) with each of ``drops``' adapters' score lowered by its drop, re-sorted."""
    if not any(drops.values()):
        return ranked
    out = [(score - drops.get(i, 0.0), i, parts) for score, i, parts in ranked]
    out.sort(key=lambda t: (-t[0], t[1]))
    return out


def after_originals(hits: list[SearchHit], copies: dict[int, int]) -> list[SearchHit]:
    """``hits`` with each copy (``copies``: id → its original; a generated adapter that is a
    registered one's weights as is) that ranks above its original moved to right after it, scored
    as it is. A copy's description is the request it was made for, so its text signal can outrank
    the original it copied for the next similar request; the original is what was checked."""
    at = {int(h.adapter["id"]): n for n, h in enumerate(hits)}
    moved = {c for c, o in copies.items() if c in at and o in at and at[c] < at[o]}
    if not moved:
        return hits
    out: list[SearchHit] = []
    for h in hits:
        i = int(h.adapter["id"])
        if i in moved:
            continue
        out.append(h)
        for c in sorted((c for c in moved if copies[c] == i), key=at.__getitem__):
            hit = hits[at[c]]
            rel = hit.relevance if hit.relevance is None or h.relevance is None else min(hit.relevance, h.relevance)
            out.append(replace(hit, score=min(hit.score, h.score), relevance=rel,
                               why=f"{hit.why}; a copy of #{i} ({h.adapter['name']}): listed after it"))  # fmt: skip
    return out


def verdict_among(calibration: Calibration, pool: list[tuple[int, float | None]], text: dict[int, float] | None,
                 fits: Callable[[int], bool]) -> bool | None:  # fmt: skip
    """``Calibration.nothing_fits`` over the adapters that can do the request (``fits``: of the kind it
    is about, not converting the other way round): the relevances of the verdict's ``pool`` ((id, relevance), best first) and the best
    text cosine (``text``: id → cosine, None without a text signal) among those. A picture request
    that only a text adapter's words resemble fits nothing; so does a pool with none of the kind."""
    mine = [r for i, r in pool if fits(i)]
    if pool and not mine:
        return True
    best = max((c for i, c in text.items() if fits(i)), default=None) if text is not None else None
    return calibration.nothing_fits(mine, best)
