"""Suite ``replicas``: the catch-up clock sees every add and removal reach replica B."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_measure_sees_each_change_reach_the_other_replica(tmp_path: Path) -> None:
    from benchmarks.replicas import TIMEOUT, measure
    from encoders.text import get_text_encoder

    row = measure(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path, 2, get_text_encoder(None))
    assert row["database"] == "sqlite" and row["n"] == 2
    assert row["add_missed"] == 0 and row["remove_missed"] == 0 and row["follower_errors"] == 0
    assert 0 < row["add_p50_s"] <= row["add_p99_s"] < TIMEOUT
    assert 0 < row["remove_p50_s"] <= row["remove_p99_s"] < TIMEOUT
