"""``/health`` and ``/stats``."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request

from loradex.types import Health, Stats
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
    starting = getattr(request.app.state, "starting", None)
    if starting is not None:
        job = request.app.state.jobs.get(starting)
        if job.status in ("queued", "running"):
            of = f"{job.done}/{job.total}" if job.total is not None else f"{job.done}"
            return replace(h, status="starting", detail=f"ingesting the bundled adapters: {of} (job {job.id})")
        request.app.state.starting = None
    tuning = getattr(request.app.state, "tuning", None)
    if tuning is not None:
        job = request.app.state.jobs.get(tuning)
        if job.status in ("queued", "running"):
            of = f"{job.done}/{job.total}" if job.total is not None else f"{job.done}"
            return replace(
                h, detail=f"fine-tuning the text encoder: {of} (job {job.id}); search uses the plain text map"
            )
        request.app.state.tuning = None
    return h


@router.get("/stats", response_model=Stats)
def stats(service: ServiceDep) -> Stats:
    return service.stats()  # type: ignore[no-any-return]
