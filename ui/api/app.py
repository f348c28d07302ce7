"""``create_app(service)``: the REST API of a ``LocalService`` (FastAPI), routes by resource."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from loradex.errors import ERROR_CODES
from loradex.jobs import JobRunner
from ui.api.adapters import router as adapter_routes
from ui.api.admin import router as admin_routes
from ui.api.create import router as create_routes
from ui.api.errors import BodyLimit, install_error_handlers
from ui.api.meta import router as meta_routes
from ui.api.search import router as search_routes
from ui.api.uploads import UploadLimits

DEFAULT_MAX_UPLOAD_BYTES = 2 << 30  # one request body (a Flux LoRA is ~1 GiB)
UPLOAD_PATHS = ("/ingest",)


def create_app(
    service: Any,
    *,
    admin_token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    limits: UploadLimits | None = None,
    cors_origins: Sequence[str] | None = None,
    jobs: JobRunner | None = None,
) -> FastAPI:
    """The REST API of ``service``. ``admin_token=None`` disables the admin endpoints (403). Jobs run
    on ``jobs`` (default: a runner of this app's own, stopped when the app shuts down)."""
    from loradex import __version__

    runner = jobs or _runner(service)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if jobs is None:
            runner.shutdown()

    app = FastAPI(
        lifespan=lifespan,
        title="loradex",
        version=__version__,
        description='LoRA adapter registry and search. Errors: `{"error": {"code", "message"}}`; '
        f"codes: {', '.join(ERROR_CODES)}.",
    )
    app.state.service, app.state.jobs = service, runner
    app.state.limits = limits or UploadLimits(max_unpacked_bytes=max(4 * max_upload_bytes, 1 << 30))
    app.state.admin_token = admin_token.encode() if admin_token else None
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=max_upload_bytes, paths=UPLOAD_PATHS)  # type: ignore[arg-type]
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST", "DELETE"],  # type: ignore[arg-type]
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip
    for routes in (meta_routes, adapter_routes, search_routes, admin_routes, create_routes):
        app.include_router(routes)
    return app


def _runner(service: Any) -> Any:
    """The service's runner (``LocalService.job_runner``: the PostgreSQL queue in shared mode), or an
    in-process one recovering what an earlier process left."""
    if hasattr(service, "job_runner"):
        return service.job_runner()
    return JobRunner(store=_job_store(service))


def _job_store(service: Any) -> Any:
    """The service's saved jobs; jobs an earlier process left unfinished are failed (naming what
    they did not reach) and staged uploads without a live job removed."""
    if not hasattr(service, "job_store"):
        return None
    store = service.job_store()
    store.recover(Path(getattr(service, "uploads", Path(service.home) / "uploads")))
    return store
