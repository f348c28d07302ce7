"""Hybrid scores do not depend on k: they are standardised over a reference pool that is the same
whatever k asks for (``loradex.search.REFERENCE_POOL``)."""

from __future__ import annotations

import random

from loradex.search import fuse


def test_fused_score_is_fixed_by_the_reference_pool() -> None:
    rng = random.Random(0)
    text = {i: rng.uniform(0.1, 0.6) for i in range(200)}
    weights = {i: rng.uniform(-0.2, 0.9) for i in range(200)}
    reference = set(sorted(text, key=lambda i: -text[i])[:64]) | set(sorted(weights, key=lambda i: -weights[i])[:64])
    small = {i for i in reference} | set(range(5))
    large = set(range(200))
    a = fuse({"text": {i: text[i] for i in small}, "weights": {i: weights[i] for i in small}}, reference=reference)
    b = fuse({"text": {i: text[i] for i in large}, "weights": {i: weights[i] for i in large}}, reference=reference)
    assert all(abs(a[i] - b[i]) < 1e-12 for i in small)
    # Without a reference the pool's own statistics move with its size (what k used to do).
    c = fuse({"text": {i: text[i] for i in small}, "weights": {i: weights[i] for i in small}})
    d = fuse({"text": {i: text[i] for i in large}, "weights": {i: weights[i] for i in large}})
    assert max(abs(c[i] - d[i]) for i in small) > 0.05
