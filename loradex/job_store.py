"""Jobs in the database: what ``JobRunner`` saves as a job moves, so its state, progress and results
survive a restart, and what a restarted server does with the jobs the previous one left.

``recover`` marks a job that was queued or running when its process died as failed (code
``interrupted``), naming for an ingestion the staged files it did not reach, and removes staged
upload folders whose job has ended or that no job owns.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loradex.types import ErrorInfo, Job

INTERRUPTED = "interrupted"


def job_state(job: Job) -> dict[str, Any]:
    d = asdict(job)
    return {k: d[k] for k in ("result", "output", "encoder", "error")}


def job_from_row(row: Any) -> Job:
    state = dict(row.state or {})
    return Job.from_dict({"id": row.id, "kind": row.kind, "status": row.status, "done": row.done,
                          "total": row.total, "created_at": row.created_at, "finished_at": row.finished_at,
                          **state})  # fmt: skip


class JobStore:
    """Saves and reads jobs through a ``registry.store.Registry``'s database."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def save(self, job: Job, staged: str | Path | None = None) -> None:
        from registry.db import transaction
        from registry.models import JobRecord

        with transaction(self.registry.sessions) as s:
            row = s.get(JobRecord, job.id)
            if row is None:
                row = JobRecord(id=job.id, kind=job.kind, created_at=job.created_at or time.time(),
                                staged=str(staged) if staged else None)  # fmt: skip
                s.add(row)
            row.status, row.done, row.total, row.finished_at = job.status, job.done, job.total, job.finished_at
            row.state = job_state(job)

    def load(self, job_id: str) -> Job | None:
        from registry.models import JobRecord

        with self.registry.sessions() as s:
            row = s.get(JobRecord, job_id)
            return job_from_row(row) if row is not None else None

    def recent(self, n: int = 200) -> list[Job]:
        from sqlalchemy import select

        from registry.models import JobRecord

        with self.registry.sessions() as s:
            rows = s.scalars(select(JobRecord).order_by(JobRecord.created_at.desc()).limit(n)).all()
            return [job_from_row(r) for r in rows]

    def recover(self, uploads: Path | None = None) -> list[Job]:
        """Fail the jobs a dead process left queued or running; clean staged folders. The jobs failed."""
        from sqlalchemy import select

        from registry.db import transaction
        from registry.models import JobRecord

        failed = []
        with transaction(self.registry.sessions) as s:
            rows = s.scalars(select(JobRecord).where(JobRecord.status.in_(("queued", "running")))).all()
            for row in rows:
                job = job_from_row(row)
                missed = _not_reached(job, row.staged)
                message = f"interrupted: the server stopped while this {job.kind} job was {job.status}"
                if missed:
                    shown = ", ".join(missed[:10]) + (f" and {len(missed) - 10} more" if len(missed) > 10 else "")
                    message += f"; not ingested ({len(missed)}): {shown}. Upload them again"
                job.status, job.finished_at = "failed", time.time()
                job.error = ErrorInfo(INTERRUPTED, message)
                row.status, row.finished_at, row.state = job.status, job.finished_at, job_state(job)
                failed.append(job)
            live = {r.id for r in s.scalars(select(JobRecord).where(JobRecord.status.in_(("queued", "running"))))}
            staged = [Path(r.staged) for r in s.scalars(select(JobRecord).where(JobRecord.staged.is_not(None)))
                      if r.staged and r.id not in live]  # fmt: skip
        for folder in staged:
            shutil.rmtree(folder, ignore_errors=True)
        if uploads is not None and uploads.is_dir():
            for folder in uploads.iterdir():  # staged by a process that died before saving its job
                if folder.is_dir() and folder.name not in live:
                    shutil.rmtree(folder, ignore_errors=True)
        return failed


STAGING_LOCK = ".owner"  # flocked by the process writing a made adapter into its staging folder


@contextmanager
def staging_folder(parent: Path, prefix: str) -> Iterator[Path]:
    """A new folder under ``parent`` for files a job writes before ingesting them (a merged or
    generated adapter), removed at the end. The writing process holds an flock on it meanwhile: the
    kernel drops it when the process dies, which is how ``clean_staging`` tells a folder left by a
    killed process from one being written right now (by this or another process on the data dir)."""
    import fcntl
    import tempfile

    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    fd = os.open(folder / STAGING_LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)  # after the removal: the folder is never seen unlocked while it exists


def clean_staging(parent: Path) -> list[Path]:
    """Remove the staging folders (``staging_folder``) whose writer is gone; the folders removed."""
    import fcntl

    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for folder in sorted(parent.iterdir()):
        if not folder.is_dir():
            continue
        try:
            fd = os.open(folder / STAGING_LOCK, os.O_RDWR)
        except FileNotFoundError:  # killed before the lock file was made (or an older layout): no owner
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its writer is alive
        else:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed


def _not_reached(job: Job, staged: str | None) -> list[str]:
    """Files of a staged ingestion that have no result yet (paths relative to the staged folder)."""
    if job.kind != "ingest" or not staged or not Path(staged).is_dir():
        return []
    from registry.ingest import discover

    root = Path(staged)
    done = {r.path for r in (job.result.results if job.result else [])}
    out = []
    for unit in discover([root]):
        rel = unit.path.relative_to(root).as_posix() if unit.path.is_relative_to(root) else str(unit.path)
        if rel not in done:
            out.append(rel)
    return out
