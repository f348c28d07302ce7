"""A generated adapter that copies one registered adapter as is ranks right after it
(``loradex.search.after_originals``; its lineage through ``Registry.copies_of``)."""

from __future__ import annotations

from loradex.search import after_originals
from loradex.types import SearchHit


def _hit(i: int, score: float, origin: str = "ingested", rel: float | None = 0.5) -> SearchHit:
    return SearchHit({"id": i, "name": f"a{i}", "origin": origin}, score, {}, "text similarity", rel)


def test_a_copy_above_its_original_moves_to_right_after_it() -> None:
    hits = [_hit(9, 3.0, "generated", 0.9), _hit(1, 2.0), _hit(2, 1.5), _hit(3, 1.0)]
    out = after_originals(hits, {9: 2})
    assert [int(h.adapter["id"]) for h in out] == [1, 2, 9, 3]
    moved = out[2]
    assert moved.score == 1.5 and moved.relevance == 0.5 and "a copy of #2 (a2): listed after it" in moved.why
    assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)


def test_copies_below_their_original_or_without_it_stay_put() -> None:
    hits = [_hit(1, 2.0), _hit(9, 1.8, "generated"), _hit(8, 1.7, "generated"), _hit(3, 1.0)]
    assert after_originals(hits, {9: 1, 8: 42}) == hits  # 9 is already below 1; 8's original is not shown
    assert after_originals(hits, {}) == hits


def test_several_copies_of_one_original_keep_their_order() -> None:
    hits = [_hit(9, 3.0, "generated"), _hit(8, 2.5, "generated"), _hit(1, 2.0), _hit(2, 1.0)]
    assert [int(h.adapter["id"]) for h in after_originals(hits, {9: 1, 8: 1})] == [1, 9, 8, 2]
