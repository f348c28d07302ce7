"""The reliability suite's parts, short: a kill -9 crash trial and a concurrency run on SQLite,
and the format readers fuzzed from the real fixtures (hypothesis drives the mutations)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.reliability import concurrency, crash_trials, fuzz_seeds, mutate
from registry.errors import RegistryError


def _sqlite(d: Path) -> str:
    return f"sqlite:///{d / 'r.db'}"


def test_crash_trials_lose_nothing() -> None:
    r = crash_trials(3, _sqlite, files=12)
    assert r["trials"] == 3
    assert r["dangling_after_kill"] == 0  # no row without its blob, no index entry without its row
    assert r["incomplete_after_rerun"] == 0 and r["problems_after_rerun"] == 0


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_job_crash_trials_lose_nothing(db: str) -> None:
    from benchmarks.reliability import PgSchemas
    from benchmarks.reliability_jobs import job_crash_trials

    pg = PgSchemas()
    try:
        r = job_crash_trials(3 if db == "sqlite" else 2, _sqlite if db == "sqlite" else pg, merges=2, generations=1)
    finally:
        pg.drop()
    assert r["trials"] >= 2 and r["full_plan_s"] > 0
    assert (r["dangling_after_kill"], r["live_jobs_after_restart"], r["staging_left_after_restart"]) == (0, 0, 0), r
    assert (r["incomplete_after_rerun"], r["wrong_lineage_after_rerun"], r["problems_after_rerun"]) == (0, 0, 0), r


def test_concurrent_writers_and_readers_lose_nothing() -> None:
    r = concurrency(_sqlite, writers=2, readers=1, files=8, seconds=2)
    assert r["crashed_processes"] == 0, r["examples"]
    assert r["ingested"] > 0 and r["reads"] > 0
    assert (r["lost_writes"], r["ids_reused"], r["read_errors"], r["fsck_problems"]) == (0, 0, 0, 0), r


@pytest.fixture(scope="module")
def seeds(real_adapters: Path) -> list[Path]:
    # The LoKr fixture reads in seconds (350 SVDs); the others keep a short run varied.
    return [p for p in fuzz_seeds() if "lokr" not in p.name]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(min_value=0, max_value=10**6), salt=st.integers(min_value=0, max_value=2**32))
def test_readers_only_refuse_mutated_fixtures(seeds: list[Path], tmp_path_factory, pick: int, salt: int) -> None:
    from registry.formats import read_adapter

    src = seeds[pick % len(seeds)]
    rng = random.Random(salt)
    work = tmp_path_factory.mktemp("fuzz")
    if src.is_dir():
        case = work / src.name
        shutil.copytree(src, case)
        target = rng.choice([p for p in case.iterdir() if p.suffix in (".safetensors", ".bin", ".json")])
        target.write_bytes(mutate(target.read_bytes(), rng))
    else:
        case = work / src.name
        case.write_bytes(mutate(src.read_bytes(), rng))
    try:
        read_adapter(case)
    except RegistryError as e:
        assert str(case.name) in str(e) or str(work) in str(e), e  # the refusal names the file


def test_api_writers_and_searchers_lose_nothing() -> None:
    """A few seconds of uploads, deletions, searches and reads against a real server process (SQLite)."""
    from benchmarks.reliability_api import api_concurrency

    r = api_concurrency(_sqlite, writers=2, searchers=2, seconds=3)
    for column in ("requests", "server_errors_5xx", "lost_writes", "removed_returned", "ids_reused", "fsck_problems"):
        assert column in r
    assert r["ingested"] > 0 and r["requests"].get("ingest", 0) > 0, r
    assert r["requests"].get("search", 0) + r["requests"].get("list", 0) > 0, r
    assert (r["server_errors_5xx"], r["lost_writes"], r["removed_returned"], r["ids_reused"]) == (0, 0, 0, 0), r
    assert (r["ack_not_visible"], r["sha256_registered_twice"], r["other_errors"], r["fsck_problems"]) == (
        0,
        0,
        0,
        0,
    ), r


@pytest.mark.postgres
def test_pg_schemas_drop_only_their_own(tmp_path: Path) -> None:
    """Two runs on one database (a suite and a test at once): one run's cleanup leaves the other's
    schemas alone (it used to drop every loradex_rel_* schema)."""
    from sqlalchemy import create_engine, text

    from benchmarks.reliability import PgSchemas

    mine, theirs = PgSchemas(), PgSchemas()
    try:
        mine(tmp_path), theirs(tmp_path)

        def present() -> set[str]:
            with create_engine(mine.url).connect() as c:
                rows = c.execute(text("select nspname from pg_namespace where nspname like 'loradex_rel_%'")).all()
            return {r[0] for r in rows}

        made = set(mine.made) | set(theirs.made)
        assert made <= present()
        gone = set(mine.made)
        mine.drop()
        assert not gone & present() and set(theirs.made) <= present()
    finally:
        mine.drop(), theirs.drop()
