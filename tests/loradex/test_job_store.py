"""Jobs are saved in the database: state and results survive a restart; a job a dead process left
running is failed with the files it did not reach, and staged uploads are cleaned."""

from __future__ import annotations

import threading
from pathlib import Path

from loradex.job_store import JobStore
from loradex.jobs import JobHandle, JobRunner, submit_ingest
from loradex.types import IngestReport, Job
from registry.store import Registry
from tests.registry.test_reliability import kohya_file


def _wait(runner: JobRunner, job_id: str) -> Job:
    for _ in range(600):
        job = runner.get(job_id)
        if job.finished:
            return job
        threading.Event().wait(0.05)
    raise AssertionError(f"job {job_id} did not finish")


class _Svc:
    def __init__(self, reg: Registry) -> None:
        self.registry = reg

    def ingest(self, paths, **kw):  # type: ignore[no-untyped-def]
        return self.registry.ingest(paths, **kw)


def test_finished_jobs_are_read_back_by_a_new_runner(db_url: str, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "home", db_url)
    reg.init()
    staged = tmp_path / "home" / "uploads" / "j1"
    staged.mkdir(parents=True)
    for i in range(3):
        kohya_file(staged / f"a{i}.safetensors", i)
    first = JobRunner(store=JobStore(reg))
    job = _wait(first, submit_ingest(first, _Svc(reg), staged, "j1").id)
    assert job.status == "done" and job.done == 3 and not staged.exists()

    def work(h: JobHandle) -> dict:
        h.update(total=2, done=2)
        return {"adapter_id": 7}

    other = _wait(first, first.submit("generate", work).id)
    first.shutdown()
    again = JobRunner(store=JobStore(reg))  # a restarted server
    got = again.get("j1")
    assert (
        got.status == "done"
        and got.result is not None
        and sorted(r.status for r in got.result.results) == ["ingested"] * 3
    )
    assert again.get(other.id).output == {"adapter_id": 7}
    assert {j.id for j in again.list()} >= {"j1", other.id}


def test_interrupted_jobs_fail_naming_what_was_not_done(db_url: str, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "home", db_url)
    reg.init()
    uploads = tmp_path / "home" / "uploads"
    staged = uploads / "dead"
    staged.mkdir(parents=True)
    for i in range(3):
        kohya_file(staged / f"a{i}.safetensors", i)
    store = JobStore(reg)
    # What a process killed mid-ingest leaves: a running job with one result saved.
    report = IngestReport()
    report.results.append(reg.ingest([staged / "a0.safetensors"]).results[0])
    report.results[0].path = "a0.safetensors"
    store.save(Job("dead", "ingest", "running", done=1, total=3, result=report, created_at=1.0), staged)
    orphan = uploads / "no-job"
    orphan.mkdir()
    (failed,) = store.recover(uploads)
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "interrupted"
    assert "a1.safetensors" in failed.error.message and "a2.safetensors" in failed.error.message
    assert "a0.safetensors" not in failed.error.message
    assert not staged.exists() and not orphan.exists()
    assert store.load("dead").status == "failed"  # type: ignore[union-attr]
    assert store.recover(uploads) == []  # once


class _WatchedStore(JobStore):
    """The real store, noting for each finished save whether the runner already showed the job finished."""

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self.runner: JobRunner | None = None
        self.shown_before_saved: list[bool] = []

    def save(self, job: Job, staged: str | Path | None = None) -> None:
        if job.finished and self.runner is not None:
            self.shown_before_saved.append(self.runner.get(job.id).finished)
        super().save(job, staged)


def test_a_job_is_saved_finished_before_it_shows_finished(db_url: str, tmp_path: Path) -> None:
    """Whoever sees a job done (a poll, ``Client.wait``) finds it done in the store too: a restart at
    that moment cannot bring back the running state with its last throttled progress."""
    reg = Registry(tmp_path / "home", db_url)
    reg.init()
    store = _WatchedStore(reg)
    runner = JobRunner(store=store, save_every=60.0)  # progress saves throttled away: only the final one lands
    store.runner = runner

    def work(h: JobHandle) -> dict:
        for i in range(5):
            h.update(done=i + 1, total=5)
        return {"adapter_id": 3}

    def broken(h: JobHandle) -> dict:
        raise ValueError("nope")

    done = _wait(runner, runner.submit("merge", work).id)
    failed = _wait(runner, runner.submit("merge", broken).id)
    runner.shutdown()
    assert store.shown_before_saved == [False, False]
    assert (store.load(done.id).status, store.load(done.id).done) == ("done", 5)
    assert store.load(failed.id).status == "failed"
