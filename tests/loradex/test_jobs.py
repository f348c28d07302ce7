"""The job runner (loradex.jobs): a submitted job runs on the worker thread, reports progress and
its output, and a failure carries the stable error code (details of unexpected ones stay in the log)."""

from __future__ import annotations

import threading
import time

import pytest

from loradex.errors import JobNotFoundError, SearchError
from loradex.jobs import BACKGROUND, JobHandle, JobRunner
from loradex.types import Job


def wait(runner: JobRunner, job_id: str, timeout: float = 10) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = runner.get(job_id)
        if job.finished:
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish")


def test_a_job_reports_progress_and_output() -> None:
    runner = JobRunner()
    release = threading.Event()

    def work(h: JobHandle) -> dict[str, int]:
        h.update(total=3)
        for i in range(3):
            h.update(done=i + 1)
        release.wait(5)
        return {"made": 3}

    job = runner.submit("generate", work)
    assert job.kind == "generate" and job.status == "queued" and not job.finished
    deadline = time.monotonic() + 5
    while runner.get(job.id).done < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    running = runner.get(job.id)
    assert (running.status, running.done, running.total, running.output) == ("running", 3, 3, None)
    release.set()
    done = wait(runner, job.id)
    assert done.status == "done" and done.output == {"made": 3} and done.finished_at is not None
    assert [j.id for j in runner.list()] == [job.id]
    runner.shutdown()


def test_failures_carry_codes_and_hide_unexpected_details() -> None:
    runner = JobRunner(keep=2)

    def refused(h: JobHandle) -> None:
        raise SearchError("empty prompt")

    def broken(h: JobHandle) -> None:
        raise RuntimeError("secret /srv/path")

    a = wait(runner, runner.submit("x", refused).id)
    b = wait(runner, runner.submit("y", broken, what="generation").id)
    assert (
        a.status == "failed"
        and a.error is not None
        and (a.error.code, a.error.message) == ("bad_request", "empty prompt")
    )
    assert b.error is not None and b.error.code == "internal" and "secret" not in b.error.message
    assert b.error.message.startswith("generation failed")
    c = runner.submit("z", lambda h: None)
    wait(runner, c.id)
    assert [j.id for j in runner.list()] == [c.id, b.id]  # only the newest `keep`
    with pytest.raises(JobNotFoundError, match="no job 'nope'"):
        runner.get("nope")
    with pytest.raises(JobNotFoundError):
        runner.get(a.id)
    runner.shutdown()
    d = runner.submit("after", lambda h: {"ok": True})  # a shut-down runner starts a new worker
    assert wait(runner, d.id).output == {"ok": True}
    runner.shutdown()


def test_jobs_of_a_lane_run_one_at_a_time_and_the_background_lane_apart() -> None:
    """A first serve's tune runs on the background lane: jobs users submit meanwhile do not wait for it,
    while the users' jobs still run one at a time, in order."""
    runner = JobRunner()
    release, second_started = threading.Event(), threading.Event()
    order: list[str] = []

    def long_tune(h: JobHandle) -> None:
        release.wait(10)
        order.append("tune")

    def first(h: JobHandle) -> None:
        assert not second_started.wait(0.3)  # the second user job has not started while this one runs
        order.append("first")

    def second(h: JobHandle) -> None:
        second_started.set()
        order.append("second")

    tune = runner.submit("train-text-map", long_tune, lane=BACKGROUND)
    a, b = runner.submit("generate", first), runner.submit("compose", second)
    assert wait(runner, b.id).status == "done" and wait(runner, a.id).status == "done"
    assert order == ["first", "second"] and runner.get(tune.id).status == "running"
    release.set()
    assert wait(runner, tune.id).status == "done" and order[-1] == "tune"
    runner.shutdown()
