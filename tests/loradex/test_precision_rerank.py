"""Hybrid search lifts, among its top hits, adapters whose description the prompt covers
(``description_precision``, ``rerank_by_precision``): "swap the case" prefers the adapter that swaps
the case over one that swaps it and then reverses the string."""

from __future__ import annotations

import numpy as np
import pytest

from loradex.ranking import RERANK_POOL, description_precision, rerank_by_precision


def test_precision_is_the_share_of_the_description_the_prompt_covers() -> None:
    eye = np.eye(4, dtype=np.float32)
    assert description_precision(eye[:2], eye[:2]) == pytest.approx(1.0)
    assert description_precision(eye[:2], eye[:4]) == pytest.approx(0.5)  # two of four pieces asked for
    assert description_precision(eye[:2], np.zeros((0, 4), np.float32)) == 0.0


def test_the_rerank_lifts_the_pool_by_precision_and_keeps_the_rest_below() -> None:
    ranked = [(2.0, 1, None), (1.9, 2, None), (1.0, 3, None)] + [(0.5 - j / 100, 10 + j, None) for j in range(12)]
    assert rerank_by_precision(ranked, {1: 0.5, 2: 0.9, 3: 0.7}, 0.0) == ranked
    out = rerank_by_precision(ranked, {1: 0.5, 2: 0.9, 3: 0.7}, 0.25)
    assert [i for _, i, _ in out[:3]] == [2, 1, 3]  # 2 covers more of its description: lifted over 1
    assert [i for _, i, _ in out[3:]] == [10 + j for j in range(12)]  # outside the pool: order kept, below
    flat = rerank_by_precision(ranked, {1: 0.70, 2: 0.71, 3: 0.70}, 0.25)  # spread under the floor: no swap
    assert [i for _, i, _ in flat[:3]] == [1, 2, 3]
    assert len(ranked) > RERANK_POOL


def test_the_encoder_finds_the_extra_step() -> None:
    from encoders.text import TextEncoder

    enc = TextEncoder()
    prompt = enc.token_vectors("flip the case of each letter")
    one = description_precision(prompt, enc.token_vectors("Swap the case of every letter."))
    two = description_precision(prompt, enc.token_vectors("Swap the case of every letter, then reverse the string."))
    assert one > two + 0.02
    again = enc.token_vectors("flip the case of each letter")
    assert again is prompt and again.shape[1] == 384 and np.allclose(np.linalg.norm(again, axis=1), 1.0)
