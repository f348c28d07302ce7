"""``/health`` and ``/stats``."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request

from loradex.types import Health, Job, Stats
from ui.api.deps import ServiceDep
from ui.api.errors import ApiError
from ui.api.schemas import ERRORS

router = APIRouter(tags=["meta"], responses=ERRORS)


@router.get("/health", response_model=Health)
def health(request: Request, service: ServiceDep) -> Health:
    """``ok``; ``starting`` (still 200: the API answers) while the server ingests its bundled
    adapters in the background (``app.state.starting`` holds that job's id). ``ok`` says in its
    detail when a first start's text-encoder tune is still running (``app.state.tuning``)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        h: Health = service.health()
    except SQLAlchemyError as e:
        raise ApiError(503, "unavailable", f"database unreachable ({type(e).__name__})") from None
    job = _running(request, "starting")
    if job is not None:
        return replace(h, status="starting", detail=f"ingesting the bundled adapters: {_done(job)} (job {job.id})")
    job = _running(request, "tuning")
    if job is not None:
        tune = f"fine-tuning the text encoder: {_done(job)} (job {job.id}); search uses the plain text map"
        return replace(h, detail=tune)
    return h


def _running(request: Request, attr: str) -> Job | None:
    """The job ``app.state.<attr>`` names while it is queued or running; once it has ended, None
    (and the attribute is cleared)."""
    job_id = getattr(request.app.state, attr, None)
    if job_id is None:
        return None
    job: Job = request.app.state.jobs.get(job_id)
    if job.status in ("queued", "running"):
        return job
    setattr(request.app.state, attr, None)
    return None


def _done(job: Job) -> str:
    return f"{job.done}/{job.total}" if job.total is not None else f"{job.done}"


@router.get("/stats", response_model=Stats)
def stats(service: ServiceDep) -> Stats:
    return service.stats()  # type: ignore[no-any-return]
