"""The job runner: long operations (ingesting an upload, training an encoder, generating …) run
one at a time on a worker thread, polled by id. Jobs live in the process that ran them; the
newest ``keep`` are kept.

A new kind of job is one ``submit`` call; ``work(handle)`` reports through the handle and returns
the job's ``output`` (a JSON dict, or None):

    def work(h: JobHandle) -> dict[str, Any]:
        h.update(total=steps)
        for i in range(steps):
            ...
            h.update(done=i + 1)
        return {"adapter_id": new_id}

    job = runner.submit("generate", work)     # a snapshot: status "queued"
    runner.get(job.id)                        # poll: status, done/total, output, error

A failure marks the job failed with ``ErrorInfo(error_code(exc), message)``; an unexpected
exception is logged and reported as ``internal`` without its details.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from loradex import tasks
from loradex.errors import JobNotFoundError, error_code, known_cause
from loradex.job_store import JobStore
from loradex.types import ErrorInfo, IngestReport, IngestResult, Job
from registry.errors import RegistryError

log = logging.getLogger("loradex.jobs")
JOBS = "jobs"  # the lane users' jobs run on, one at a time
BACKGROUND = "background"  # a lane for the service's own long work (a first serve's tune)


class JobHandle:
    """What a running job's work sees: ``update`` its fields, ``add_result`` for ingest results."""

    def __init__(self, runner: JobRunner, job: Job) -> None:
        self._runner, self.job = runner, job

    @property
    def id(self) -> str:
        return self.job.id

    def update(self, **changes: Any) -> None:
        self._runner._update(self.job.id, **changes)

    def add_result(self, result: IngestResult) -> None:
        with self._runner._lock:
            assert self.job.result is not None
            self.job.result.results.append(result)
            self.job.done += 1
        self._runner._save(self.job.id)


class JobRunner:
    """In-memory jobs run one at a time on a worker thread (SQLite has one writer anyway), per
    *lane*: a job submitted on another lane (``BACKGROUND``: the tune a first ``serve`` starts) runs
    on its own thread, so the jobs users submit do not queue behind it. Ingests and encoder swaps
    keep to one encoder version across lanes (``registry.swap``)."""

    def __init__(self, keep: int = 200, store: JobStore | None = None, save_every: float = 0.5) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pools: dict[str, ThreadPoolExecutor] = {}  # lane → its one worker thread
        self.keep = keep
        self.store = store  # saves each job as it moves (``loradex.job_store``): state survives a restart
        self.save_every = save_every  # seconds between progress saves (status changes save at once)
        self._saved: dict[str, float] = {}
        self._staged: dict[str, str] = {}

    def get(self, job_id: str) -> Job:
        """A snapshot of the job; ``JobNotFoundError`` when there is none."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                return _snapshot(job)
        stored = self.store.load(job_id) if self.store is not None else None
        if stored is None:
            raise JobNotFoundError(job_id)
        return stored

    def _save(self, job_id: str, *, force: bool = False) -> None:
        if self.store is None:
            return
        now = time.monotonic()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or (not force and now - self._saved.get(job_id, 0.0) < self.save_every):
                return
            self._saved[job_id] = now
            snap = _snapshot(job)
        try:
            self.store.save(snap, self._staged.get(job_id))
        except Exception:  # a lost progress save must not fail the job itself
            log.exception("could not save job %s", job_id)

    def list(self) -> list[Job]:
        """Snapshots, newest first (with the stored jobs of earlier processes)."""
        with self._lock:
            mine = [_snapshot(j) for j in reversed(self._jobs.values())]
        if self.store is None:
            return mine
        seen = {j.id for j in mine}
        older = [j for j in self.store.recent(self.keep) if j.id not in seen]
        return sorted(mine + older, key=lambda j: -j.created_at)[: self.keep]

    def _update(self, job_id: str, **changes: Any) -> None:
        """Apply ``changes`` to the job; a status change is saved at once. A job that finishes is
        saved *before* it shows as finished: whoever sees it done (a poll, ``wait``) finds it in the
        store too, so a restart right after cannot bring back an older state."""
        if changes.get("status") in ("done", "failed") and self.store is not None:
            with self._lock:
                final = replace(_snapshot(self._jobs[job_id]), **changes)
                self._saved[job_id] = time.monotonic()
            try:
                self.store.save(final, self._staged.get(job_id))
            except Exception:  # a lost save must not fail the job itself
                log.exception("could not save job %s", job_id)
            with self._lock:
                job = self._jobs[job_id]
                for k, v in changes.items():
                    setattr(job, k, v)
            return
        with self._lock:
            job = self._jobs[job_id]
            moved = "status" in changes and changes["status"] != job.status
            for k, v in changes.items():
                setattr(job, k, v)
        self._save(job_id, force=moved)

    def submit(self, kind: str, work: Callable[[JobHandle], dict[str, Any] | None], *, job_id: str | None = None,
               total: int | None = None, what: str | None = None, clean: Callable[[str], str] = str,
               result: IngestReport | None = None, staged: Path | None = None, lane: str = JOBS) -> Job:  # fmt: skip
        """Register a job of ``kind`` and run ``work(handle)`` on ``lane``'s worker thread; its return
        value becomes ``job.output``. ``clean`` scrubs server paths from error messages; ``what`` names
        the operation in the message of an unexpected failure."""
        job = Job(job_id or uuid.uuid4().hex, kind, "queued", total=total, result=result, created_at=time.time())
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
            snap = _snapshot(job)
            if staged is not None:
                self._staged[job.id] = str(staged)
            pool = self._pools.get(lane)
            if pool is None:
                name = "loradex-job" if lane == JOBS else f"loradex-{lane}"
                pool = self._pools[lane] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

        self._save(job.id, force=True)
        pool.submit(self._execute, job, work, what or kind, clean)
        return snap

    def _execute(self, job: Job, work: Callable[[JobHandle], dict[str, Any] | None], what: str,
                 clean: Callable[[str], str]) -> None:  # fmt: skip
        try:
            self._update(job.id, status="running")
            output = work(JobHandle(self, job))
            self._update(job.id, status="done", finished_at=time.time(),
                         **({"output": output} if output is not None else {}))  # fmt: skip
        except RegistryError as e:
            self._update(job.id, status="failed", error=ErrorInfo(error_code(e), clean(str(e))),
                         finished_at=time.time())  # fmt: skip
        except Exception as e:
            known = known_cause(e)  # read-only data dir, disk full, database down: say so
            if known is not None:
                log.warning("%s job %s failed: %s", job.kind, job.id, known)
                self._update(job.id, status="failed", error=ErrorInfo(error_code(known), clean(str(known))),
                             finished_at=time.time())  # fmt: skip
                return
            log.exception("%s job %s failed", job.kind, job.id)
            self._update(job.id, status="failed", finished_at=time.time(),
                         error=ErrorInfo("internal", f"{what} failed (details are in the server log)"))  # fmt: skip

    def submit_task(self, service: Any, kind: str, payload: dict[str, Any], *, job_id: str | None = None,
                    staged: Path | None = None, lane: str = JOBS) -> Job:  # fmt: skip
        """Run the task code of ``kind`` (``loradex.tasks``) with its JSON ``payload`` on ``lane``'s
        worker thread: what a shared-mode ``loradex worker`` runs from the queue, in this process."""
        spec = tasks.task(kind)
        return self.submit(kind, lambda h: spec.run(service, payload, h), job_id=job_id, total=spec.total,
                           what=spec.what, clean=_cleaner(payload), result=tasks.new_result(kind), staged=staged,
                           lane=lane)  # fmt: skip

    def run_task(self, service: Any, kind: str, payload: dict[str, Any], job_id: str) -> Job:
        """Run ``kind`` now, in this thread, as job ``job_id``, continuing the stored job of that id
        when there is one (a retry keeps the results an earlier attempt saved); the finished job."""
        spec = tasks.task(kind)
        stored = self.store.load(job_id) if self.store is not None else None
        job = Job(job_id, kind, "queued", total=spec.total, result=tasks.new_result(kind), created_at=time.time())
        if stored is not None:
            job = replace(stored, status="queued", error=None, finished_at=None,
                          result=stored.result if stored.result is not None else job.result)  # fmt: skip
        with self._lock:
            self._jobs[job.id] = job
        self._execute(job, lambda h: spec.run(service, payload, h), spec.what, _cleaner(payload))
        with self._lock:
            self._saved.pop(job.id, None)
            return _snapshot(self._jobs.pop(job.id))

    def shutdown(self) -> None:
        """Stop the workers (queued jobs are dropped); a later ``submit`` starts a new one."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)


def _cleaner(payload: dict[str, Any]) -> Callable[[str], str]:
    """Scrubs the staged folder of an ingestion from error messages (server paths stay private)."""
    root = payload.get("root")
    if not root:
        return str
    prefix = f"{root}{os.sep}"
    return lambda m: m.replace(prefix, "")


def submit_ingest(runner: Any, service: Any, root: Path, job_id: str | None = None) -> Job:
    """Ingest the staged upload folder ``root`` as a job; results carry paths relative to ``root``,
    and ``root`` is removed afterwards."""
    return runner.submit_task(service, "ingest", {"root": str(root)}, job_id=job_id, staged=root)  # type: ignore[no-any-return]


def submit_train_encoder(runner: Any, service: Any, family: str, train_config: Any, texts: Any) -> Job:
    """Train ``family``'s weight encoder as a job (``done`` counts epochs; ``encoder`` holds the result)."""
    from dataclasses import asdict

    payload = {"family": family, "texts": texts, "train_config": asdict(train_config)}
    return runner.submit_task(service, "train-encoder", payload)  # type: ignore[no-any-return]


def submit_train_text_map(runner: Any, service: Any, texts: Any, config: dict[str, Any] | None = None,
                          tune: dict[str, Any] | None = None, lane: str = JOBS) -> Job:  # fmt: skip
    """Fit the registry's text map as a job (``output``: version and metrics); ``config``: fields of
    ``encoders.text_map.TextMapConfig`` that differ from the registry's defaults; ``tune``: fields of
    ``encoders.registry_text_tune.TuneConfig`` to fine-tune the text encoder too (None: no tune);
    ``lane``: the runner's lane (``BACKGROUND``: users' jobs do not wait for it)."""
    payload = {"texts": texts, "config": config or {}, "tune": tune}
    return runner.submit_task(service, "train-text-map", payload, lane=lane)  # type: ignore[no-any-return]


def _snapshot(job: Job) -> Job:
    return replace(job, result=IngestReport(list(job.result.results)) if job.result is not None else None)


__all__ = [
    "BACKGROUND",
    "JOBS",
    "JobHandle",
    "JobRunner",
    "submit_ingest",
    "submit_train_encoder",
    "submit_train_text_map",
]
