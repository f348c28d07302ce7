"""Jobs on a PostgreSQL queue (procrastinate), for shared mode: API replicas defer, workers run.

Every job kind of ``loradex.tasks`` is a procrastinate task ``loradex.<kind>`` on the queue of
what it needs: ``default`` or ``cuda`` (GPU-heavy: train-encoder, generate, compose, and a merge
with a learned strategy such as ``zip``: the queue is chosen per job, ``queue_of``). A worker
(``loradex worker``) listens on ``default`` plus one queue per thing it offers, so GPU tasks go
only to workers that declared ``cuda``. The job's state lives in the ``jobs`` table
(``loradex.job_store``), saved by the worker as it moves, so any replica answers ``GET /jobs/{id}``.

A killed worker's job is retried: workers send heartbeats, and every worker resets to ``todo``
the jobs of workers whose heartbeat is older than ``stalled_after`` seconds (procrastinate's
stalled-job query); the task code then runs again from the start (it is idempotent, see
``loradex.tasks``), keeping the results the first attempt saved.

procrastinate's own tables are created by its schema manager on first use (under an advisory
lock), beside loradex's Alembic-owned schema. Its rows of finished jobs are deleted by the workers
once older than the retention (``LORADEX_QUEUE_RETENTION_HOURS``, default a week).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loradex import tasks
from loradex.errors import JobNotFoundError
from loradex.job_store import JobStore
from loradex.jobs import JOBS
from loradex.types import ErrorInfo, Job
from registry.errors import RegistryError

log = logging.getLogger("loradex.queue")

DEFAULT_QUEUE = "default"
_SCHEMA_LOCK = 0x6C6F72617163  # advisory lock key: one process applies procrastinate's schema


def queue_of(kind: str, payload: dict[str, Any] | None = None) -> str:
    """The queue a job of ``kind`` with ``payload`` is deferred to: what it needs, or ``default``
    (a worker runs a task by its name from whichever queue it listens on)."""
    return tasks.needs_for(kind, payload) or DEFAULT_QUEUE


def queues_for(offers: Iterable[str]) -> list[str]:
    """The queues a worker offering ``offers`` (e.g. ``["cuda"]``) listens on."""
    known = set(tasks.CAPABILITIES)
    unknown = sorted(set(offers) - known)
    if unknown:
        raise ValueError(f"unknown capabilities {unknown}; known: {', '.join(sorted(known))}")
    return [DEFAULT_QUEUE, *sorted(set(offers))]


def conninfo(service: Any) -> str:
    """The service's database as a libpq URL; ``RegistryError`` unless it is PostgreSQL."""
    url = service.registry.engine.url
    if url.get_backend_name() != "postgresql":
        raise RegistryError(f"the job queue needs PostgreSQL (LORADEX_DB_URL=postgresql://…); the database is "
                            f"{url.get_backend_name()}")  # fmt: skip
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


def ensure_schema(info: str) -> None:
    """Create procrastinate's tables unless they are there (one process at a time)."""
    import procrastinate
    import psycopg

    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
            if row is None or row[0] is None:
                app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=info))
                with app.open():
                    app.schema_manager.apply_schema()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


class QueueRunner:
    """``JobRunner``'s interface for an API replica in shared mode: ``submit_task`` saves the job and
    defers it to the queue; ``get`` and ``list`` read the jobs table (whoever runs them)."""

    def __init__(self, service: Any, keep: int = 200) -> None:
        import procrastinate

        info = conninfo(service)
        ensure_schema(info)
        self.store = JobStore(service.registry)
        self.keep = keep
        self.app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=info))
        self.app.open()

    def submit_task(self, service: Any, kind: str, payload: dict[str, Any], *, job_id: str | None = None,
                    staged: Path | None = None, lane: str = JOBS) -> Job:  # fmt: skip
        """Queue ``kind`` for the workers (``lane`` is the in-process runner's: workers take jobs in
        parallel already)."""
        spec = tasks.task(kind)
        job = Job(job_id or uuid.uuid4().hex, kind, "queued", total=spec.total, result=tasks.new_result(kind),
                  created_at=time.time())  # fmt: skip
        self.store.save(job, staged)
        try:
            queue = queue_of(kind, payload)
            self.app.configure_task(name=f"loradex.{kind}", queue=queue).defer(job_id=job.id, payload=payload)
        except Exception:  # never leave a job "queued" that no worker will ever see
            log.exception("could not queue %s job %s", kind, job.id)
            job.status, job.finished_at = "failed", time.time()
            job.error = ErrorInfo("internal", f"the {spec.what} could not be queued (details are in the server log)")
            self.store.save(job, staged)
        return job

    def submit(self, kind: str, *args: Any, **kw: Any) -> Job:
        raise TypeError(f"shared mode queues task kinds only ({', '.join(tasks.TASKS)}): use submit_task, not "
                        f"a function ({kind!r})")  # fmt: skip

    def get(self, job_id: str) -> Job:
        job = self.store.load(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    def list(self) -> list[Job]:
        return self.store.recent(self.keep)

    def shutdown(self) -> None:
        self.app.close()


def build_app(service: Any, info: str, runner: Any) -> Any:
    """A procrastinate app whose tasks run ``loradex.tasks`` on ``service`` through ``runner`` (a
    ``JobRunner`` saving to the jobs table)."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=info))
    for kind in tasks.TASKS:

        def run(job_id: str, payload: dict[str, Any], kind: str = kind) -> None:
            job = runner.run_task(service, kind, payload, job_id)
            log.info("%s job %s: %s", kind, job_id, job.status)

        app.task(name=f"loradex.{kind}", queue=queue_of(kind))(run)
    return app


async def _retry_stalled(app: Any, stalled_after: float, every: float) -> None:
    """Reset the jobs of workers that stopped sending heartbeats (killed, machine lost) to ``todo``."""
    while True:
        try:
            for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
                log.warning("retrying job %s (%s): its worker stopped", job.id, job.task_name)
                await app.job_manager.retry_job(job)
        except Exception:  # another worker retried it first, or the database is away: next round
            log.exception("retrying stalled jobs failed")
        await asyncio.sleep(every)


async def remove_finished(app: Any, retention_hours: int) -> None:
    """Delete the queue rows (and their events) of jobs finished — succeeded, failed, cancelled or
    aborted — more than ``retention_hours`` ago (procrastinate's ``delete_old_jobs``). The job's
    state, progress and results stay in loradex's ``jobs`` table; the queue rows only served to run it."""
    await app.job_manager.delete_old_jobs(nb_hours=retention_hours, include_failed=True, include_cancelled=True,
                                          include_aborted=True)  # fmt: skip


async def _remove_finished_every(app: Any, retention_hours: int, every: float) -> None:
    """``remove_finished`` at start and then every ``every`` s (each worker: the DELETE is idempotent)."""
    while True:
        try:
            await remove_finished(app, retention_hours)
        except Exception:  # the database is away: next round
            log.exception("removing finished queue rows failed")
        await asyncio.sleep(every)


def run_worker(service: Any, *, offers: Iterable[str] = (), name: str | None = None, heartbeat: float = 10.0,
               stalled_after: float = 30.0, poll: float = 2.0, retention_hours: int = 168,
               cleanup_every: float = 600.0) -> None:  # fmt: skip
    """Run jobs from the queues ``offers`` opens (``queues_for``) until SIGINT / SIGTERM; finished
    jobs' queue rows are removed once older than ``retention_hours`` (checked every ``cleanup_every`` s)."""
    from loradex.job_store import clean_staging
    from loradex.jobs import JobRunner

    clean_staging(service.home / "staging")  # made adapters a killed worker on this data dir was writing
    info = conninfo(service)
    ensure_schema(info)
    queues = queues_for(offers)
    runner = JobRunner(store=service.job_store())
    app = build_app(service, info, runner)

    async def main() -> None:
        async with app.open_async():
            retrier = asyncio.create_task(_retry_stalled(app, stalled_after, max(heartbeat, 0.5)))
            cleaner = asyncio.create_task(_remove_finished_every(app, retention_hours, cleanup_every))
            try:
                await app.run_worker_async(queues=queues, name=name, concurrency=1, update_heartbeat_interval=heartbeat,
                                           stalled_worker_timeout=stalled_after, fetch_job_polling_interval=poll,
                                           delete_jobs="never")  # fmt: skip
            finally:
                retrier.cancel()
                cleaner.cancel()

    asyncio.run(main())


__all__ = [
    "DEFAULT_QUEUE",
    "QueueRunner",
    "build_app",
    "ensure_schema",
    "queue_of",
    "queues_for",
    "remove_finished",
    "run_worker",
]
