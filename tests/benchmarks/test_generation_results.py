"""The generation suite's result plumbing: a run of some methods completed from an earlier merge,
and the picture's columns (analogy beside the method best on validation)."""

from __future__ import annotations

import copy
from typing import Any

from benchmarks.generation import fill
from benchmarks.generation_picture import columns


def _run(methods: dict[str, float]) -> dict[str, Any]:
    splits = {"validation": {m: {"gain": g} for m, g in methods.items()}}
    rows = [{"zoo": "image", "split": "validation", "method": m, "gain": g} for m, g in methods.items()]
    return {"zoos": {"image": {"splits": splits}}, "rows": rows}


def test_a_partial_run_keeps_its_own_figures_and_takes_only_the_missing_methods() -> None:
    previous = _run({"nearest": 0.7, "analogy": 0.5, "semantic": 0.6})
    new = fill(_run({"nearest": 0.7, "analogy": 0.8}), copy.deepcopy(previous))
    summ = new["zoos"]["image"]["splits"]["validation"]
    assert {m: v["gain"] for m, v in summ.items()} == {"nearest": 0.7, "analogy": 0.8, "semantic": 0.6}
    assert new["zoos"]["image"]["filled_from_previous"] == ["semantic"]
    assert sorted((r["method"], r["gain"]) for r in new["rows"]) == [("analogy", 0.8), ("nearest", 0.7),
                                                                     ("semantic", 0.6)]  # fmt: skip


def test_the_picture_shows_analogy_and_the_best_method_once() -> None:
    keys = [k for _, k, _ in columns({"best": "semantic"})]
    assert keys == ["base", "nearest", "semantic", "analogy", "oracle"]
    for best in ("nearest", "analogy"):
        cols = columns({"best": best})
        assert [k for _, k, _ in cols] == ["base", "nearest", "analogy", "oracle"]
        assert [lab for lab, k, _ in cols if k == best] == [f"{best} (best on validation)"]
    # a run with --methods hypernet evaluated no nearest / analogy: no empty columns drawn as 0.00
    ran = {"best": "hypernet", "tasks": {"caesar_8": {"base": {"score": 0.0}, "hypernet": {"score": 0.1},
                                                      "oracle": {"score": 1.0}}}}  # fmt: skip
    assert [k for _, k, _ in columns(ran)] == ["base", "hypernet", "oracle"]
