"""The request sets ``benchmarks.registry_requests`` searches: every request names a task the zoos have."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.registry_requests import SETS, requests

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo"


def test_every_request_names_a_zoo_task() -> None:
    tasks = {
        t["id"] for kind in ("text", "image") for t in json.loads((ZOO / kind / "manifest.json").read_text())["tasks"]
    }
    rows = requests()
    assert {s for s, _, _ in rows} == set(SETS)
    assert [t for _, t, _ in rows if t not in tasks] == []
    assert all(q.strip() for _, _, q in rows) and len(set(rows)) == len(rows)  # no request twice in a set
    direction = [(t, q) for s, t, q in rows if s == "direction"]
    assert len(direction) == 60 and sum(s == "broad" for s, _, _ in rows) == 90
    assert sum(s == "direction2" for s, _, _ in rows) == 48 and sum(s == "caesar" for s, _, _ in rows) == 36
    # both members of the confusable pairs are asked for
    for pair in (("rotl_2", "rotr_2"), ("sort", "sortdesc"), ("upper", "lower"), ("keep_2", "keepfrom_2")):
        assert all(any(t == p for t, _ in direction) for p in pair)
