"""The everyday-words probe of ``generate``: every request names a zoo task, the halves are fixed,
and no request is a text the generators train on or another benchmark asks."""

from __future__ import annotations

import json
from collections import Counter

from benchmarks.generation_data import QUERIES, manifest
from benchmarks.generation_words import load_requests, summary
from tests.benchmarks.test_generation_queries import training_texts


def test_requests_name_zoo_tasks_in_two_fixed_halves() -> None:
    rows = load_requests()
    tasks = {t["id"]: t["split"] for t in manifest("text")["tasks"]}
    assert len(rows) >= 40
    assert all(r["task"] in tasks for r in rows), [r["task"] for r in rows if r["task"] not in tasks]
    halves = Counter(r["half"] for r in rows)
    assert set(halves) == {"tune", "report"} and abs(halves["tune"] - halves["report"]) <= 2
    assert load_requests("tune") + load_requests("report") != [] and len(load_requests("tune")) == halves["tune"]
    for half in ("tune", "report"):  # both halves ask for held-out tasks and chains
        part = [r for r in rows if r["half"] == half]
        assert any(tasks[r["task"]] == "heldout" for r in part) and any("__then__" in r["task"] for r in part)


def test_requests_are_not_texts_generators_train_on_or_the_suite_asks() -> None:
    texts = {r["text"].strip().lower() for r in load_requests()}
    assert not texts & training_texts("text")
    suite = {q["query"].strip().lower() for q in json.loads(QUERIES.read_text())["text"]}
    assert not texts & suite


def test_summary_counts_solved_requests() -> None:
    rows = [{"generated": 0.95, "retrieved": 0.0, "oracle": 1.0, "base": 0.0, "split": "train", "kind": "terse"},
            {"generated": 0.5, "retrieved": 1.0, "oracle": 1.0, "base": 0.0, "split": "heldout", "kind": "terse"}]  # fmt: skip
    s = summary(rows)
    assert s["all"]["generated_solved"] == 1 and s["all"]["retrieved_solved"] == 1
    assert s["all"]["generated"] == 0.725 and s["split=heldout"]["requests"] == 1
