"""The request sets ``benchmarks.registry_requests`` searches: every request names a task the zoos have."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.registry_requests import SAMPLES, SETS, rates, requests, voiced

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo"


def test_every_request_names_a_zoo_task() -> None:
    tasks = {
        t["id"] for kind in ("text", "image") for t in json.loads((ZOO / kind / "manifest.json").read_text())["tasks"]
    } | set(SAMPLES)
    rows = requests()
    assert {s for s, _, _ in rows} == set(SETS)
    assert [
        t
        for s, t, _ in rows
        if t not in tasks and not (s in ("none", "none2", "round8a", "round8b", "round10", "round11") and t is None)
    ] == []
    for half in ("round8a", "round8b"):  # 110 requests with a task and 40 without in each half
        assert sum(s == half and t is not None for s, t, _ in rows) == 110
        assert sum(s == half and t is None for s, t, _ in rows) == 40
    assert sum(s == "round10" and t is not None for s, t, _ in rows) == 125
    assert sum(s == "round10" and t is None for s, t, _ in rows) == 45
    assert sum(s == "round11" and t is not None for s, t, _ in rows) == 110
    assert sum(s == "round11" and t is None for s, t, _ in rows) == 90
    assert sum(s == "none" for s, _, _ in rows) == 60 and sum(s == "none2" for s, _, _ in rows) == 50
    assert all(t is None for s, t, _ in rows if s in ("none", "none2"))
    voices = {(s, v) for s, _, _, v in voiced()}
    assert {v for s, v in voices if s == "voices2"} == {"code", "spec", "esl", "texting", "kid", "roundabout"}
    assert all(q.strip() for _, _, q in rows) and len(set(rows)) == len(rows)  # no request twice in a set
    direction = [(t, q) for s, t, q in rows if s == "direction"]
    assert len(direction) == 60 and sum(s == "broad" for s, _, _ in rows) == 90
    assert sum(s == "direction2" for s, _, _ in rows) == 48 and sum(s == "caesar" for s, _, _ in rows) == 36
    # both members of the confusable pairs are asked for
    for pair in (("rotl_2", "rotr_2"), ("sort", "sortdesc"), ("upper", "lower"), ("keep_2", "keepfrom_2")):
        assert all(any(t == p for t, _ in direction) for p in pair)


def test_rates_count_hits_and_the_nothing_fits_verdict_apart() -> None:
    rows = [
        {"task": "reverse", "rank": 1, "nothing_fits": False},
        {"task": "upper", "rank": 3, "nothing_fits": True},  # a false alarm
        {"task": "lower", "rank": None, "nothing_fits": False},
        {"task": None, "rank": None, "nothing_fits": True},  # no adapter does it: said so
        {"task": None, "rank": None, "nothing_fits": False},
    ]
    got = rates(rows, 5)
    assert got == {"n": 3, "recall@1": 0.333, "recall@5": 0.667, "nothing_fits_said": 0.333, "n_no_adapter": 2,
                   "nothing_fits_on_no_adapter": 0.5}  # fmt: skip
