"""Suite ``queue`` (issue #17): no job lost when a worker is killed mid-task.

PostgreSQL at ``LORADEX_TEST_PG_URL`` (a schema of its own, dropped afterwards). One ``loradex
worker`` is alive at a time. Each trial stages three sample adapters as one ingest upload, holds the
blob lock of one of them (chosen by the trial's seed) so that the job stops mid-task, waits until
the worker runs it, kills the worker with SIGKILL, releases the lock, starts the next worker and
clocks how long until the job is done (the new worker's stalled-job check puts it back on the
queue, then runs it to completion; that worker is the next trial's victim).
Reported: trials, jobs finished, jobs lost (not done within the timeout), procrastinate attempts,
kill → done seconds p50/p99 (the next worker's start plus ``--stalled-after``), and whether each adapter is in the
registry exactly once. Target: no job lost in ≥ 20 trials.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "adapters"
UNITS = ("watercolor_sd15.safetensors", "pixel_art_sdxl.safetensors", "neon_glow_flux.safetensors")
STALLED_AFTER = 3.0
TIMEOUT = 120.0


def _worker(work: Path, url: str, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "ui.cli", "--home", str(work / name), "--db", url, "--blob-dir", str(work / "blobs"),
           "worker", "--name", name, "--heartbeat", "0.5", "--stalled-after", str(STALLED_AFTER), "--offers"]  # fmt: skip
    with (work / f"{name}.log").open("ab") as log:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def trials(url: str, work: Path, n: int) -> dict[str, Any]:
    from sqlalchemy import text

    from loradex.queue import QueueRunner
    from loradex.service import LocalService
    from registry.ingest import discover, prepare
    from registry.storage import BlobStore

    api = LocalService.open(work / "api", url, embed=False, mode="shared", blob_dir=work / "blobs")
    runner = QueueRunner(api)
    blobs = BlobStore(work / "blobs")
    worker = _worker(work, url, "worker-0")  # the only worker alive: it takes the next job
    rows, lost, kill_to_done = [], 0, []
    try:
        for t in range(n):
            rng = random.Random(t)
            staged = api.uploads / f"trial-{t}"
            staged.mkdir(parents=True)
            for name in UNITS:
                shutil.copy(SAMPLES / name, staged / name)
            shas = [prepare(u).sha256 for u in discover([staged])]
            held = rng.randrange(len(shas))
            with blobs.lock(shas[held]):  # the job stops mid-task, on this adapter
                job = runner.submit_task(api, "ingest", {"root": str(staged)}, staged=staged)
                started = _wait(
                    lambda j=job.id, w=worker: runner.get(j).status == "running" or w.poll() is not None, 300
                )
                assert started and worker.poll() is None, f"worker {t} did not start the job (see {work})"
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                killed = time.perf_counter()
            # The next worker finds the job stalled, retries and finishes it, then is the next victim.
            worker = _worker(work, url, f"worker-{t + 1}")
            done = _wait(lambda j=job.id: runner.get(j).finished, TIMEOUT + 300)  # includes the worker's start
            final = runner.get(job.id)
            if not done or final.status != "done":
                lost += 1
            else:
                kill_to_done.append(time.perf_counter() - killed)
            with api.registry.engine.connect() as conn:
                pid, attempts = conn.execute(text("SELECT id, attempts FROM procrastinate_jobs "
                                                  "WHERE args->>'job_id' = :j"), {"j": job.id}).one()  # fmt: skip
                events = [e for (e,) in conn.execute(text("SELECT type FROM procrastinate_events WHERE job_id = :p "
                                                          "ORDER BY id"), {"p": pid})]  # fmt: skip
                copies = conn.execute(text("SELECT count(*) FROM adapters")).scalar()
            rows.append({"trial": t, "locked_unit": held, "status": final.status, "attempts": attempts,
                         "results": len(final.result.results) if final.result else 0, "adapters": copies,
                         "events": " ".join(events)})  # fmt: skip
            for sha in shas:  # the next trial ingests the same bytes afresh
                api.remove(sha)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        runner.shutdown()
        api.close()
    first = kill_to_done if kill_to_done else [float("nan")]
    return {
        "trials": n,
        "finished": n - lost,
        "lost": lost,
        "attempts": sorted({r["attempts"] for r in rows}),
        "kill_to_done_p50_s": statistics.median(first),
        "kill_to_done_p99_s": sorted(first)[min(len(first) - 1, round(0.99 * (len(first) - 1)))],
        "stalled_after_s": STALLED_AFTER,
        "all_units_reported": all(r["results"] == len(UNITS) for r in rows),
        "each_adapter_once": all(r["adapters"] == len(UNITS) for r in rows),
        "rows": rows,
    }


def suite_queue(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.replicas import _pg_schema

    url, drop = _pg_schema()
    try:
        with tempfile.TemporaryDirectory(prefix="loradex-queue-") as tmp:
            out = trials(url, Path(tmp), 3 if args.quick else 20)
    finally:
        drop()
    out["target"] = "no job lost in >= 20 trials"
    out["meets_target"] = out["lost"] == 0 and out["trials"] >= 20
    return out
