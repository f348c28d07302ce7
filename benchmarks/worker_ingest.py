"""Suite ``workers`` (issue #17): ingestion into PostgreSQL through 1 and 2 ``loradex worker``
processes, against the same ingestion in one process without the queue.

``n`` distinct adapters (the sample watercolor LoRA with a different description each, see
``benchmarks.replicas._variants``) are staged as uploads of ``batch`` adapters, one ingest job
each, in a fresh PostgreSQL schema per configuration. The clock starts when the first job is
deferred (every worker has loaded its encoders by then) and stops when the last is done; embedding
(text encoder) is included. Reported per configuration: adapters/s, ratio to the in-process
baseline, and database bytes per adapter (tables and indexes of the schema, after minus before;
through the queue this includes the procrastinate job rows and events and the saved job reports).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.queue_kills import _wait, _worker
from benchmarks.replicas import _pg_schema, _variants

SIZE_SQL = """SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"""


def _db_bytes(svc: Any) -> int:
    from sqlalchemy import text

    with svc.registry.engine.connect() as conn:
        return int(conn.execute(text(SIZE_SQL)).scalar() or 0)


def _stage(files: list[Path], root: Path, batch: int) -> list[Path]:
    folders = []
    for k in range(0, len(files), batch):
        folder = root / f"batch-{k // batch:04d}"
        folder.mkdir(parents=True)
        for f in files[k : k + batch]:
            shutil.copy(f, folder / f.name)
        folders.append(folder)
    return folders


def in_process(files: list[Path], work: Path, text_encoder: Any, batch: int) -> dict[str, Any]:
    from loradex.service import LocalService

    url, drop = _pg_schema()
    try:
        svc = LocalService.open(work / "home", url, blob_dir=work / "blobs", text_encoder=text_encoder)
        svc.embed_prompt("warm up the text encoder")  # as a worker's is by the time jobs arrive
        folders = _stage(files, work / "staged", batch)  # the same batches as the jobs
        before = _db_bytes(svc)
        t0 = time.perf_counter()
        ingested = sum(svc.ingest([f]).count("ingested") for f in folders)
        seconds = time.perf_counter() - t0
        assert ingested == len(files), f"{ingested} of {len(files)} ingested"
        size = _db_bytes(svc) - before
        svc.close()
    finally:
        drop()
    return {"config": f"1 process, no queue, batches of {batch}", "workers": 0, "adapters": len(files), "seconds": seconds,
            "adapters_per_s": len(files) / seconds, "db_bytes_per_adapter": size / len(files)}  # fmt: skip


def through_workers(files: list[Path], work: Path, workers: int, batch: int) -> dict[str, Any]:
    with worker_pool(work, workers) as (api, runner):
        before = _db_bytes(api)
        folders = _stage(files, api.uploads, batch)
        seconds, ingested = run_jobs(api, runner, folders, work)
        assert ingested == len(files), f"{ingested} of {len(files)} ingested"
        size = _db_bytes(api) - before
    return {"config": f"{workers} worker(s), jobs of {batch}", "workers": workers, "adapters": len(files),
            "seconds": seconds, "adapters_per_s": len(files) / seconds, "db_bytes_per_adapter": size / len(files)}  # fmt: skip


@contextlib.contextmanager
def worker_pool(work: Path, workers: int) -> Iterator[tuple[Any, Any]]:
    """A fresh PostgreSQL schema, an API-side service with its queue runner, and ``workers`` ``loradex
    worker`` processes that have loaded their encoders; all stopped (schema dropped) at the end."""
    from loradex.queue import QueueRunner
    from loradex.service import LocalService

    url, drop = _pg_schema()
    procs = []
    try:
        api = LocalService.open(work / "api", url, embed=False, mode="shared", blob_dir=work / "blobs")
        runner = QueueRunner(api)
        procs = [_worker(work, url, f"w{i}") for i in range(workers)]
        logs = [work / f"w{i}.log" for i in range(workers)]
        ready = _wait(lambda: all(p.is_file() and "queues default" in p.read_text(errors="replace") for p in logs), 600)
        assert ready and all(p.poll() is None for p in procs), f"workers did not start (see {work})"
        time.sleep(3)  # the procrastinate worker loop starts after the service is open
        yield api, runner
        runner.shutdown()
        api.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(60)
        drop()


def run_jobs(api: Any, runner: Any, folders: list[Path], work: Path) -> tuple[float, int]:
    """One ingest job per staged folder; seconds from the first deferral to the last job done, and
    how many adapters the jobs ingested."""
    t0 = time.perf_counter()
    jobs = [runner.submit_task(api, "ingest", {"root": str(f)}, staged=f) for f in folders]
    done = _wait(lambda: all(runner.get(j.id).finished for j in jobs), 3600)
    seconds = time.perf_counter() - t0
    assert done, f"jobs did not finish (see {work})"
    return seconds, sum(runner.get(j.id).result.count("ingested") for j in jobs)  # type: ignore[union-attr]


def suite_workers(args: argparse.Namespace) -> dict[str, Any]:
    from encoders.text import get_text_encoder

    n, batch = (40, 10) if args.quick else (400, 25)
    rows = []
    with tempfile.TemporaryDirectory(prefix="loradex-workers-") as tmp:
        files = _variants(Path(tmp) / "files", n)
        rows.append(in_process(files, Path(tmp) / "inproc", get_text_encoder(None), batch))
        rows[-1]["load_1min"] = os.getloadavg()[0]
        for w in (1, 2):
            rows.append(through_workers(files, Path(tmp) / f"w{w}", w, batch))
            rows[-1]["load_1min"] = os.getloadavg()[0]
    base = rows[0]["adapters_per_s"]
    for r in rows:
        r["ratio_to_in_process"] = r["adapters_per_s"] / base
    return {"rows": rows, "note": "embedding included; workers share this machine's cores with each other; "
            "load_1min is the machine's load average after each run: other users' load skews the ratios"}  # fmt: skip
