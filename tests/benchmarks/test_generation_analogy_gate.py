"""The analogy gate's leave-one-out harness: the threshold keeps every in-library source under its
cap, and the logistic fit separates what one cosine gap alone cannot."""

from __future__ import annotations

from typing import Any

import torch

from benchmarks.generation_analogy_gate import (
    IN_LIBRARY_MAX,
    SIGNALS,
    _outcome,
    best_threshold,
    fit_logistic,
    request_signals,
)


def _recs() -> list[dict]:
    recs = []
    for i in range(8):  # left-out: a triple hits, the nearest remaining expert does not
        recs.append({"zoo": "image", "kind": "left_out", "source": ("canonical", "paraphrase", "terse")[i % 3],
                     "task": f"t{i}", "hit_take": 1.0, "hit_near": 0.0})  # fmt: skip
    for s in ("validation", "paraphrase", "terse"):
        recs += [{"zoo": "image", "kind": "in_library", "source": s, "task": f"u{j}"} for j in range(60)]
    return recs


def test_the_threshold_keeps_each_in_library_source_under_the_cap() -> None:
    recs = _recs()
    # scores: left-out 1..8; one in-library terse request scores above every left-out one, two more at 4.5
    score = [float(i + 1) for i in range(8)] + [0.0] * 180
    score[8 + 120] = 100.0  # terse: 1/60 ≤ 0.02 may take
    score[8 + 121] = score[8 + 122] = 4.5  # 3/60 > 0.02: the threshold must stay above 4.5
    res = best_threshold(recs, score)
    assert res is not None
    t, o = res
    assert t == 5.0
    assert o["image"]["left_out_hit"] == 0.5
    assert all(v <= IN_LIBRARY_MAX for v in o["image"]["in_library_taken_by_source"].values())
    assert _outcome(recs, [s >= 4.5 for s in score])["image"]["in_library_taken_by_source"]["terse"] > IN_LIBRARY_MAX


def test_two_signals_separate_what_the_gap_alone_cannot() -> None:
    g = torch.Generator().manual_seed(0)
    n = 400
    gap = torch.rand(n, generator=g, dtype=torch.float64)
    near = torch.rand(n, generator=g, dtype=torch.float64)
    y = (gap - near > 0).double()  # positives: a large gap over a weak nearest expert
    x = torch.stack([gap, near], 1)
    w, b, _ = fit_logistic(x, y)
    acc = float(((x @ w + b >= 0).double() == y).double().mean())
    assert w[0] > 0 > w[1] and acc > 0.95


def test_a_request_whose_expert_is_left_out_loses_its_near_and_lead() -> None:
    """The signals as the harness sees them on the bundled text library: with its own expert present a
    composition's nearest expert leads clearly; left out, the nearest cosine and the lead drop and
    the best triple's gain over it (the margin rule's gap) grows."""
    from encoders.text import get_text_encoder
    from generators import BUNDLED, load_generator

    gen: Any = load_generator(BUNDLED / "zoo-text" / "analogy", text_encoder=get_text_encoder())
    task = "reverse__then__upper"
    emb = gen.embed(["Reverse the string, then convert everything to uppercase."])[0]
    inside = request_signals(gen, emb)
    out = request_signals(gen, emb, exclude=[gen.library.names.index(task)])
    assert set(inside) == set(out) == set(SIGNALS)
    assert out["near"] < inside["near"] and out["lead"] < inside["lead"] and out["gap"] > inside["gap"]
    # the browser test's everyday request stays below the shipped margin
    assert request_signals(gen, gen.embed(["write the string backwards"])[0])["gap"] < 0.26
