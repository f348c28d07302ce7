"""Suite ``api_replicas`` (issue #17): search throughput of 1 vs 2 ``loradex serve`` replicas on
one PostgreSQL database under a bounded loopback load.

A fresh PostgreSQL schema (``LORADEX_TEST_PG_URL``, dropped afterwards) is filled with the zoo
adapters (image and text zoos, embedding included) by one service, then two real
``loradex --deployment shared serve --no-samples --no-ui`` processes start on it (own data dirs,
one blob folder). Both run for the whole measurement; the load alternates rounds: all requests to
replica 1, then round-robin over replicas 1 and 2 (``benchmarks.api_load.load``: ``concurrency``
client threads, one keep-alive connection per thread and replica, ``POST /search`` k=5 hybrid),
for ``rounds`` rounds per scenario, so drift in the machine's load hits both configurations
alike. An idle replica costs nothing but its change-log follower waiting on NOTIFY. Reported per
configuration: the median over rounds of requests/s, p50 and p99, and the ratio 2 ÷ 1.

The replicas, the load generator and PostgreSQL share this machine's cores: 2 replicas get no more
CPU than 1, so the ratio measures what a second process buys on the same cores (concurrency of
the GIL-bound request handling), not what a second machine would.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ZOOS = [REPO / "benchmarks" / "zoo" / "image" / "adapters", REPO / "benchmarks" / "zoo" / "text" / "adapters"]


def fill(db_url: str, work: Path, folders: list[Path]) -> int:
    """Migrate ``db_url``, create the queue's tables and ingest ``folders``; the adapter count."""
    from loradex.queue import conninfo, ensure_schema
    from loradex.service import LocalService

    svc = LocalService.open(work / "setup", db_url, blob_dir=work / "blobs")
    try:
        report = svc.ingest(folders)
        assert report.count("ingested") > 0, f"nothing ingested from {folders}"
        ensure_schema(conninfo(svc))
        return int(svc.health().adapters)
    finally:
        svc.close()


def start_replica(db_url: str, work: Path, i: int, port: int) -> subprocess.Popen[bytes]:
    """``loradex serve`` in shared mode on ``port`` (REST only), logging to ``work/replica-i.log``."""
    env = {**os.environ, "LORADEX_BLOB_DIR": str(work / "blobs"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "ui.cli", "--home", str(work / f"replica-{i}"), "--db", db_url,
           "--deployment", "shared", "serve", "--no-samples", "--no-ui", "--port", str(port)]  # fmt: skip
    with (work / f"replica-{i}.log").open("ab") as log:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def measure(db_url: str, work: Path, folders: list[Path], *, seconds: float, warmup: float, concurrency: int,
            rounds: int, scenarios: list[str]) -> dict[str, Any]:  # fmt: skip
    import httpx

    from benchmarks.api_load import _free_port, _wait_ready, load

    adapters = fill(db_url, work, folders)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        urls = []
        for i in (1, 2):
            port = _free_port()
            procs.append(start_replica(db_url, work, i, port))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_ready(url, proc, timeout=300)
            seen = httpx.get(f"{url}/health", timeout=10).json()["adapters"]
            assert seen == adapters, f"{url} sees {seen} adapters, expected {adapters}"
            for prompt in ("warm up", "the encoders load", "on the first searches"):
                httpx.post(f"{url}/search", json={"prompt": prompt, "k": 5}, timeout=300).raise_for_status()
        runs = []
        for r in range(rounds):
            for scenario in scenarios:
                for n in (1, 2):
                    run = load(urls[:n], scenario, seconds, concurrency, warmup)
                    runs.append({"round": r, "replicas": n, **run, "load_1min": round(os.getloadavg()[0], 2)})
                    print(f"round {r} {scenario} replicas={n}: {run['requests_per_s']} req/s, "
                          f"p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, errors {run['errors']}", flush=True)  # fmt: skip
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    rows = []
    for scenario in scenarios:
        base = None
        for n in (1, 2):
            mine = [x for x in runs if x["scenario"] == scenario and x["replicas"] == n]
            rps = statistics.median(x["requests_per_s"] for x in mine)
            base = rps if base is None else base
            rows.append({"scenario": scenario, "replicas": n, "concurrency": concurrency, "rounds": len(mine),
                         "requests_per_s": rps, "p50_ms": statistics.median(x["p50_ms"] for x in mine),
                         "p99_ms": statistics.median(x["p99_ms"] for x in mine),
                         "errors": sum(sum(x["errors"].values()) for x in mine),
                         "ratio_to_1_replica": rps / base if base else None})  # fmt: skip
    return {"adapters": adapters, "rows": rows, "runs": runs}


def suite_api_replicas(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.replicas import _pg_schema

    quick = bool(getattr(args, "quick", False))
    folders = [ZOOS[0]] if quick else ZOOS
    seconds, warmup, rounds = (5.0, 2.0, 1) if quick else (15.0, 3.0, 3)
    concurrency = 8
    url, drop = _pg_schema()
    try:
        with tempfile.TemporaryDirectory(prefix="loradex-api-replicas-") as tmp:
            out = measure(url, Path(tmp), folders, seconds=seconds, warmup=warmup, concurrency=concurrency,
                          rounds=rounds, scenarios=["unique", "repeated"])  # fmt: skip
    finally:
        drop()
    return {
        **out,
        "database": "postgresql (own schema, dropped after)",
        "adapters_from": [str(f.relative_to(REPO)) for f in folders],
        "load": f"{concurrency} client threads in flight, {seconds:g} s measured after {warmup:g} s warm-up, "
        f"{rounds} rounds alternating 1 and 2 replicas; medians over rounds",
        "scenarios": "unique: every prompt new (one MiniLM forward per request); repeated: 12 prompts (prompt cache)",
        "cores": os.cpu_count(),
        "note": "replicas, load generator and PostgreSQL share this machine's cores: 2 replicas have no more CPU "
        "than 1, so the ratio is what a second process buys on the same cores, not a second machine",
    }
