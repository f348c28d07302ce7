"""Shared mode jobs on the PostgreSQL queue (procrastinate): real ``loradex worker`` processes; a
killed worker's job is retried to completion; GPU tasks wait for a worker that offers cuda."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from loradex.queue import QueueRunner, queue_of, queues_for
from loradex.service import LocalService
from registry.ingest import discover, prepare
from registry.storage import BlobStore

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "adapters" / "watercolor_sd15.safetensors"


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    from tests.conftest import _pg_schema_url

    return _pg_schema_url(request, required=True)


def _worker(tmp_path: Path, url: str, name: str, *offers: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LORADEX_CATCH_UP_INTERVAL": "0.2"}
    cmd = [sys.executable, "-m", "ui.cli", "--home", str(tmp_path / name), "--db", url, "--blob-dir",
           str(tmp_path / "blobs"), "worker", "--name", name, "--heartbeat", "0.5", "--stalled-after", "3",
           "--offers", *offers]  # fmt: skip
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _until(check, what: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout  # a liveness bound, not a speed figure
    while not check():
        assert proc is None or proc.poll() is None, f"the worker exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_killed_workers_job_is_retried_and_gpu_tasks_wait_for_cuda(tmp_path: Path, pg_url: str) -> None:
    api = LocalService.open(tmp_path / "api", pg_url, embed=False, mode="shared", blob_dir=tmp_path / "blobs")
    runner = QueueRunner(api)
    staged = api.uploads / "job-1"
    staged.mkdir(parents=True)
    shutil.copy(SAMPLE, staged / SAMPLE.name)
    sha = prepare(discover([staged])[0]).sha256
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with BlobStore(tmp_path / "blobs").lock(sha):  # the first worker blocks inside the ingest, mid-task
            job = runner.submit_task(api, "ingest", {"root": str(staged)}, job_id="job-1", staged=staged)
            assert runner.get(job.id).status == "queued"
            procs.append(_worker(tmp_path, pg_url, "w1"))
            _until(lambda: runner.get(job.id).status == "running", "the first worker to start the job", procs[0])
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
        assert runner.get(job.id).status == "running"  # left behind by the dead worker
        gen = runner.submit_task(api, "generate", {"description": "anything", "family": "no-such-family"})

        procs.append(_worker(tmp_path, pg_url, "w2"))  # no cuda: takes the retried ingest, not the generation
        _until(lambda: runner.get(job.id).finished, "the retried job to finish", procs[1])
        done = runner.get(job.id)
        assert done.status == "done", done.error
        assert [(r.path, r.status) for r in done.result.results] == [(SAMPLE.name, "ingested")]
        assert [a["name"] for a in api.list()] == ["watercolor_sd15"]
        assert not staged.exists()  # the staged upload is removed once ingested
        with api.registry.engine.connect() as conn:
            attempts = conn.execute(text("SELECT attempts, status FROM procrastinate_jobs WHERE task_name = "
                                         "'loradex.ingest'")).one()  # fmt: skip
        assert tuple(attempts) == (2, "succeeded")  # the killed attempt and the retry
        time.sleep(3)  # w2 polls every 2 s: given the chance, it still leaves the GPU task alone
        assert runner.get(gen.id).status == "queued"

        procs.append(_worker(tmp_path, pg_url, "w3", "cuda"))
        _until(lambda: runner.get(gen.id).finished, "the cuda worker to run the generation", procs[2])
        failed = runner.get(gen.id)
        assert failed.status == "failed" and failed.error is not None and "no-such-family" in failed.error.message
    finally:
        for p in procs:
            _stop(p)
        runner.shutdown()
        api.close()


def test_queues_follow_what_workers_offer() -> None:
    assert [queue_of(k) for k in ("ingest", "merge", "train-encoder", "generate", "compose")] == [
        "default", "default", "cuda", "cuda", "cuda"]  # fmt: skip
    # a merge is linear algebra, unless its strategy is fitted on the family's base (zip): the GPU's work
    merges = [{"adapters": ["1", "2"], "strategy": s} for s in ("cat", "ties", "zip", "lego")]
    assert [queue_of("merge", p) for p in merges] == ["default", "default", "cuda", "default"]
    assert queue_of("merge", {"adapters": ["1", "2"]}) == "default"  # the request's default strategy: cat
    assert queue_of("compose", {"strategy": "merge:zip"}) == queue_of("compose", {"strategy": "linear"}) == "cuda"
    assert queues_for([]) == ["default"] and queues_for(["cuda"]) == ["default", "cuda"]
    with pytest.raises(ValueError, match="unknown capabilities \\['tpu'\\]; known: cuda"):
        queues_for(["tpu"])


def test_queue_needs_postgresql(tmp_path: Path) -> None:
    from registry.errors import RegistryError

    svc = LocalService.open(tmp_path / "h", f"sqlite:///{tmp_path / 'x.db'}", embed=False, mode="shared")
    with pytest.raises(RegistryError, match="the job queue needs PostgreSQL.*sqlite"):
        QueueRunner(svc)
    svc.close()


def test_a_job_that_cannot_be_queued_fails_instead_of_waiting_forever(tmp_path: Path, pg_url: str) -> None:
    api = LocalService.open(tmp_path / "api", pg_url, embed=False, mode="shared")
    runner = QueueRunner(api)
    runner.shutdown()  # the queue's connection pool is closed: deferring raises
    try:
        job = runner.submit_task(api, "merge", {"adapters": ["1", "2"]})
        stored = runner.get(job.id)
        assert stored.status == "failed" and stored.error is not None
        assert stored.error.code == "internal" and "could not be queued" in stored.error.message
        assert [j.id for j in runner.list()] == [job.id]
    finally:
        api.close()


def test_a_zip_merge_job_waits_on_the_cuda_queue(tmp_path: Path, pg_url: str) -> None:
    """What the API replica defers: the queue row of a zip merge is on ``cuda``, a cat merge's on ``default``."""
    api = LocalService.open(tmp_path / "api", pg_url, embed=False, mode="shared", blob_dir=tmp_path / "blobs")
    runner = QueueRunner(api)
    try:
        zipped = runner.submit_task(api, "merge", {"adapters": ["1", "2"], "strategy": "zip", "options": {"steps": 5}})
        plain = runner.submit_task(api, "merge", {"adapters": ["1", "2"], "strategy": "cat"})
        with api.registry.engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT args->>'job_id', queue_name FROM procrastinate_jobs "
                                          "WHERE task_name = 'loradex.merge'")).all())  # fmt: skip
        assert rows == {zipped.id: "cuda", plain.id: "default"}
        assert runner.get(zipped.id).status == runner.get(plain.id).status == "queued"
    finally:
        runner.shutdown()
        api.close()


def _finished_job(conn, runner: QueueRunner, api: LocalService, job_id: str, hours_ago: int) -> int:  # type: ignore[no-untyped-def]
    """A queued ingest whose queue row is moved to succeeded, its events dated ``hours_ago`` back."""
    runner.submit_task(api, "ingest", {"root": "/nonexistent"}, job_id=job_id)
    (qid,) = conn.execute(text("SELECT id FROM procrastinate_jobs WHERE args->>'job_id' = :j"), {"j": job_id}).one()
    conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = :i"), {"i": qid})
    conn.execute(text("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = :i"), {"i": qid})
    conn.execute(text("UPDATE procrastinate_events SET at = now() - make_interval(hours => :h) WHERE job_id = :i"),
                 {"h": hours_ago, "i": qid})  # fmt: skip
    return int(qid)


def test_workers_remove_finished_queue_rows_after_the_retention(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = LocalService.open(tmp_path / "api", pg_url, embed=False, mode="shared", blob_dir=tmp_path / "blobs")
    runner = QueueRunner(api)
    proc = None
    try:
        with api.registry.engine.begin() as conn:
            old = _finished_job(conn, runner, api, "old", hours_ago=5)
            young = _finished_job(conn, runner, api, "young", hours_ago=1)
        waiting = runner.submit_task(api, "generate", {"description": "x", "family": "none"})  # cuda queue: stays todo

        def queue_ids() -> set[int]:
            with api.registry.engine.connect() as c:
                return {int(i) for (i,) in c.execute(text("SELECT id FROM procrastinate_jobs"))}

        assert old in queue_ids()
        monkeypatch.setenv("LORADEX_QUEUE_RETENTION_HOURS", "3")  # what the CLI worker reads
        proc = _worker(tmp_path, pg_url, "w1")
        _until(lambda: old not in queue_ids(), "the worker to remove the old finished row", proc)
        ids = queue_ids()
        assert young in ids and len(ids) == 2  # the young finished row and the waiting job stay
        assert runner.get(waiting.id).status == "queued"
        assert runner.get("old").status == "queued"  # loradex's jobs table is not the queue's: untouched
        with api.registry.engine.connect() as c:
            events = c.execute(text("SELECT count(*) FROM procrastinate_events WHERE job_id = :i"), {"i": old}).scalar()
        assert events == 0
    finally:
        if proc is not None:
            _stop(proc)
        runner.shutdown()
        api.close()


def test_queue_retention_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from loradex.settings import Settings

    assert Settings().queue_retention_hours == 168
    monkeypatch.setenv("LORADEX_QUEUE_RETENTION_HOURS", "12")
    assert Settings.from_env().queue_retention_hours == 12
    monkeypatch.setenv("LORADEX_QUEUE_RETENTION_HOURS", "soon")
    with pytest.raises(ValueError, match="LORADEX_QUEUE_RETENTION_HOURS"):
        Settings.from_env()
