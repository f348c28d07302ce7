"""``/health`` and ``/stats``."""

from __future__ import annotations

from fastapi import APIRouter

from loradex.types import Health, Stats
from ui.api.deps import ServiceDep
from ui.api.errors import ApiError
from ui.api.schemas import ERRORS

router = APIRouter(tags=["meta"], responses=ERRORS)


@router.get("/health", response_model=Health)
def health(service: ServiceDep) -> Health:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return service.health()  # type: ignore[no-any-return]
    except SQLAlchemyError as e:
        raise ApiError(503, "unavailable", f"database unreachable ({type(e).__name__})") from None


@router.get("/stats", response_model=Stats)
def stats(service: ServiceDep) -> Stats:
    return service.stats()  # type: ignore[no-any-return]
