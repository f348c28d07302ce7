"""REST API over a ``LocalService`` (FastAPI). ``create_app(service)`` builds the app.

Read endpoints are open; ``DELETE /adapters/{ref}``, ``POST /ingest`` and ``/jobs`` need
``Authorization: Bearer <admin token>`` (compared in constant time; no token configured →
admin endpoints answer 403). Every error is ``{"error": {"code", "message"}}`` with a code
from ``ui.models.ERROR_CODES``; unexpected exceptions are logged and answered with
``internal``, never a stack trace. Uploads are capped (``max_upload_bytes``, checked while the
body streams in), file names are reduced to a bare name, and zips are refused when a member
is absolute, climbs out with ``..``, is a symlink or encrypted, or when the member count or
the unpacked size exceeds its cap. CORS is off unless ``cors_origins`` is given.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import uuid
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.errors import (
    AdapterFormatError,
    AdapterNotFoundError,
    DuplicateAdapterError,
    ExportError,
    RegistryError,
)
from registry.ingest import IngestReport, IngestResult
from ui.models import ERROR_CODES, ErrorInfo, Health, Job, SearchHit, Stats
from ui.previews import PreviewUnavailableError
from ui.service import LocalService, SearchError

log = logging.getLogger("loradex.api")

DEFAULT_MAX_UPLOAD_BYTES = 2 << 30  # one request body (a Flux LoRA is ~1 GiB)
UPLOAD_PATHS = ("/ingest",)
# Module level: annotations are strings here (PEP 563), resolved in the module's namespace.
BEARER = HTTPBearer(auto_error=False, description="the admin token (LORADEX_ADMIN_TOKEN or <data dir>/admin_token)")


# -- payloads --------------------------------------------------------------------------------
class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(max_length=4000, description="what the adapter should do or look like")
    k: int = Field(10, le=1000, description="how many results")
    mode: str = Field("hybrid", description="hybrid | weights | text")
    family: str | None = None
    format: str | None = None
    origin: str | None = None
    tags: list[str] | None = Field(None, description="every one of these tags is required")


class SearchResponse(BaseModel):
    prompt: str
    mode: str
    hits: list[SearchHit]


class AdapterSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    sha256: str
    name: str
    family: str
    format: str
    origin: str
    ranks: list[int]
    module_count: int
    param_count: int
    file_size: int
    tags: list[str]
    description: str | None
    created_at: str | None


class AdapterDetail(AdapterSummary):
    files: list[str]
    trigger_words: list[Any]
    license: str | None
    source: str | None
    base_model: str | None
    modules: list[dict[str, Any]]
    metadata: dict[str, Any]
    warnings: list[Any]
    parents: list[dict[str, Any]]
    children: list[dict[str, Any]]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (400, 401, 403, 404, 413, 422, 500)}
INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                  "description": "adapter files, sidecars, or zips (unpacked safely)"},
                        "folder": {"type": "string", "description": "folder name for loose PEFT files"},
                    },
                }
            }
        },
    }
}  # fmt: skip


# -- errors ----------------------------------------------------------------------------------
class ApiError(Exception):
    """A refusal with an HTTP status and a stable code (see ``ERROR_CODES``); raised in routes."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


# -- uploads ---------------------------------------------------------------------------------
@dataclass
class UploadLimits:
    max_files: int = 256  # multipart file parts per request
    max_zip_members: int = 4096  # entries per zip
    max_unpacked_bytes: int = 8 << 30  # total unpacked size of the zips of one request

    def __post_init__(self) -> None:
        if min(self.max_files, self.max_zip_members, self.max_unpacked_bytes) < 1:
            raise ValueError(f"upload limits must be ≥ 1, got {self}")


_BAD_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
_CHUNK = 1 << 20


def safe_filename(raw: str) -> str:
    """A bare file name from a client-supplied one: directories (``/`` or ``\\``), drive letters
    and control characters are dropped; empty, dot-only and hidden names are refused."""
    name = _BAD_NAME_CHARS.sub("_", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if not name or name.startswith(".") or len(name.encode()) > 255:
        raise ApiError(422, "refused", f"unusable file name {raw[:100]!r}")
    return name


def _zip_member_parts(info: zipfile.ZipInfo, archive: str) -> list[str]:
    """Path components of a zip member, or ApiError(refused) for anything that could escape."""
    name = info.filename
    where = f"{archive}: member {name[:200]!r}"
    if "\x00" in name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ApiError(422, "refused", f"{where} has an absolute path")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ApiError(422, "refused", f"{where} climbs out of the archive ('..')")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ApiError(422, "refused", f"{where} is a symbolic link")
    if info.flag_bits & 0x1:
        raise ApiError(422, "refused", f"{where} is encrypted")
    return parts


def _extract_zip(fh: IO[bytes], archive: str, dest: Path, limits: UploadLimits, budget: list[int]) -> None:
    """Check every member first (nothing is written for a refused archive), then extract, counting
    the bytes actually written against ``budget`` (declared sizes can lie)."""
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ApiError(422, "refused", f"{archive}: not a readable zip archive ({e})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_members:
            raise ApiError(
                413, "too_large", f"{archive}: {len(infos)} members, more than the cap of {limits.max_zip_members}"
            )
        declared = sum(i.file_size for i in infos)
        if declared > budget[0]:
            raise ApiError(
                413, "too_large", f"{archive}: unpacks to {declared} bytes, over the cap of {limits.max_unpacked_bytes}"
            )
        members = [(i, _zip_member_parts(i, archive)) for i in infos]
        root = dest.resolve()
        for info, parts in members:
            if info.is_dir() or not parts:
                continue
            target = dest.joinpath(*parts)
            if not target.resolve().is_relative_to(root):
                raise ApiError(422, "refused", f"{archive}: member {info.filename[:200]!r} leaves the upload folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, target.open("xb") as out:
                    while chunk := src.read(_CHUNK):
                        budget[0] -= len(chunk)
                        if budget[0] < 0:
                            raise ApiError(
                                413,
                                "too_large",
                                f"{archive}: unpacks to more than the cap of {limits.max_unpacked_bytes} bytes",
                            )
                        out.write(chunk)
            except FileExistsError:
                raise ApiError(422, "refused", f"{archive}: member {info.filename[:200]!r} is there twice") from None
            except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as e:
                raise ApiError(
                    422, "refused", f"{archive}: member {info.filename[:200]!r} cannot be read ({e})"
                ) from None


def stage_uploads(parts: Sequence[tuple[str, IO[bytes]]], root: Path, limits: UploadLimits, folder: str | None) -> None:
    """Write uploaded parts under ``root``: zips unpacked into it, other files by their bare
    name. Loose PEFT files (``adapter_config.json`` among them) go into ``folder`` (their
    folder names the adapter). On any refusal ``root`` is removed."""
    names = [safe_filename(n) for n, _ in parts]
    loose = [n for n in names if not n.lower().endswith(".zip")]
    if len(set(loose)) != len(loose):
        raise ApiError(422, "refused", "two uploaded files have the same name")
    sub = safe_filename(folder or "peft_adapter") if "adapter_config.json" in loose else None
    root.mkdir(parents=True, exist_ok=False)
    budget = [limits.max_unpacked_bytes]
    try:
        for name, (_, fh) in zip(names, parts, strict=True):
            fh.seek(0)
            if name.lower().endswith(".zip"):
                _extract_zip(fh, name, root, limits, budget)
                continue
            target = (root / sub / name) if sub else root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with target.open("xb") as out:
                    shutil.copyfileobj(fh, out, _CHUNK)
            except FileExistsError:
                raise ApiError(
                    422, "refused", f"{name}: a file of that name came in a zip of the same upload"
                ) from None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


# -- jobs ------------------------------------------------------------------------------------
class TrainEncoderRequest(BaseModel):
    family: str = Field(min_length=1, max_length=64)
    epochs: int = Field(default=300, ge=1, le=5000)
    val_fraction: float = Field(default=0.15, ge=0.0, lt=1.0)
    seed: int = 0
    texts: dict[str, list[str]] | None = None


class JobStore:
    """In-memory jobs run one at a time on a worker thread (SQLite has one writer anyway).
    Jobs live in the process that ran them; the newest ``keep`` are kept."""

    def __init__(self, keep: int = 200) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loradex-job")
        self.keep = keep

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return _snapshot(job) if job else None

    def list(self) -> list[Job]:
        with self._lock:
            return [_snapshot(j) for j in reversed(self._jobs.values())]

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            job = self._jobs[job_id]
            for k, v in changes.items():
                setattr(job, k, v)

    def _submit(self, job: Job, work: Callable[[Job], None], what: str, clean: Callable[[str], str] = str) -> Job:
        """Register ``job`` (keeping the newest ``keep``) and run ``work(job)`` on the worker thread;
        a failure marks the job failed with a coded error (``clean`` scrubs server paths from it)."""
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
            snap = _snapshot(job)

        def run() -> None:
            try:
                self._update(job.id, status="running")
                work(job)
                self._update(job.id, status="done", finished_at=time.time())
            except RegistryError as e:
                _, code = _registry_error(e)
                self._update(job.id, status="failed", error=ErrorInfo(code, clean(str(e))), finished_at=time.time())
            except Exception:
                log.exception("%s job %s failed", job.kind, job.id)
                self._update(job.id, status="failed", finished_at=time.time(),
                             error=ErrorInfo("internal", f"{what} failed (details are in the server log)"))  # fmt: skip

        self._pool.submit(run)
        return snap

    def submit_ingest(self, job_id: str, service: LocalService, root: Path) -> Job:
        prefix = f"{root}{os.sep}"

        def relative(r: IngestResult) -> IngestResult:
            path = Path(r.path)
            rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else r.path
            return replace(r, path=rel, reason=r.reason.replace(prefix, "") if r.reason else r.reason)

        def work(job: Job) -> None:
            def progress(r: IngestResult) -> None:
                with self._lock:
                    assert job.result is not None
                    job.result.results.append(relative(r))
                    job.done += 1

            try:
                service.ingest([root], progress=progress, on_total=lambda n: self._update(job.id, total=n))
            finally:
                shutil.rmtree(root, ignore_errors=True)

        job = Job(job_id, "ingest", "queued", result=IngestReport(), created_at=time.time())
        return self._submit(job, work, "ingestion", clean=lambda m: m.replace(prefix, ""))

    def submit_train(self, service: LocalService, family: str, train_config: Any, texts: Any) -> Job:
        def work(job: Job) -> None:
            out = service.train_encoder(family, texts=texts, only_listed=bool(texts), train_config=train_config,
                                        progress=lambda epoch, total, m: self._update(job.id, done=epoch))  # fmt: skip
            self._update(job.id, encoder={"family": out["family"], "version": out["version"],
                                          "best": out["metrics"]["best"]})  # fmt: skip

        job = Job(uuid.uuid4().hex, "train-encoder", "queued", total=train_config.epochs, created_at=time.time())
        return self._submit(job, work, "training")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _snapshot(job: Job) -> Job:
    return replace(job, result=IngestReport(list(job.result.results)) if job.result is not None else None)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _registry_error(e: RegistryError) -> tuple[int, str]:
    if isinstance(e, AdapterNotFoundError):
        return 404, "not_found"
    if isinstance(e, PreviewUnavailableError):
        return 404, "no_preview"
    if isinstance(e, DuplicateAdapterError):
        return 409, "conflict"
    if isinstance(e, ExportError | AdapterFormatError):
        return 422, "refused"
    return 400, "bad_request"  # SearchError and other request-level refusals


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large"}  # fmt: skip


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return _error(e.status, e.code, e.message, e.headers)

    @app.exception_handler(RegistryError)
    async def registry_error(_: Request, e: RegistryError) -> JSONResponse:
        status, code = _registry_error(e)
        return _error(status, code, str(e))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in e.errors()]
        return _error(400, "bad_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(e.status_code, "bad_request" if e.status_code < 500 else "internal")
        message = e.detail if isinstance(e.detail, str) else code.replace("_", " ")
        return _error(e.status_code, code, message, dict(e.headers or {}))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal", "internal server error (details are in the server log)")


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes on ``paths`` with 413, from the
    Content-Length header when there is one, else while the body streams in."""

    def __init__(self, app: ASGIApp, limit: int, paths: Sequence[str]) -> None:
        self.app, self.limit, self.paths = app, limit, tuple(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        too_large = ApiError(413, "too_large", f"upload larger than the limit of {self.limit} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _error(413, too_large.code, too_large.message)(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large  # handled by the ApiError handler (the endpoint is reading the form)
            return message

        await self.app(scope, limited, send)


# -- the app ---------------------------------------------------------------------------------
def create_app(
    service: LocalService,
    *,
    admin_token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    limits: UploadLimits | None = None,
    cors_origins: Sequence[str] | None = None,
) -> FastAPI:
    """The REST API of ``service``. ``admin_token=None`` disables the admin endpoints (403)."""
    from loradex import __version__

    limits = limits or UploadLimits(max_unpacked_bytes=max(4 * max_upload_bytes, 1 << 30))
    jobs = JobStore()
    uploads = Path(service.registry.home) / "uploads"

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()

    app = FastAPI(
        lifespan=lifespan,
        title="loradex",
        version=__version__,
        description='LoRA adapter registry and search. Errors: `{"error": {"code", "message"}}`; '
        f"codes: {', '.join(ERROR_CODES)}.",
    )
    app.state.service, app.state.jobs = service, jobs
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=max_upload_bytes, paths=UPLOAD_PATHS)  # type: ignore[arg-type]
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST", "DELETE"],  # type: ignore[arg-type]
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip

    expected = admin_token.encode() if admin_token else None

    def require_admin(cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        if expected is None:
            raise ApiError(403, "forbidden", "admin endpoints are disabled: the server has no admin token")
        given = cred.credentials.encode() if cred is not None else b""
        if not hmac.compare_digest(given, expected):
            raise ApiError(401, "unauthorized", "admin endpoint: send 'Authorization: Bearer <admin token>'",
                           {"WWW-Authenticate": "Bearer"})  # fmt: skip

    admin = [Depends(require_admin)]

    @app.get("/health", response_model=Health, tags=["meta"], responses=ERRORS)
    def health() -> Health:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return Health.from_service(service)
        except SQLAlchemyError as e:
            raise ApiError(503, "unavailable", f"database unreachable ({type(e).__name__})") from None

    @app.get("/stats", response_model=Stats, tags=["meta"], responses=ERRORS)
    def stats() -> Stats:
        return Stats.from_service(service)

    @app.get("/adapters", response_model=list[AdapterSummary], tags=["adapters"], responses=ERRORS)
    def list_adapters(
        family: str | None = None,
        format: str | None = None,
        origin: str | None = None,
        tag: str | None = None,
        limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        filters = {"family": family, "format": format, "origin": origin, "tag": tag, "limit": limit, "offset": offset}
        return service.list(**{k: v for k, v in filters.items() if v})

    @app.get("/adapters/{ref}", response_model=AdapterDetail, tags=["adapters"], responses=ERRORS)
    def get_adapter(ref: str) -> dict[str, Any]:
        return service.get(ref)

    @app.delete("/adapters/{ref}", response_model=AdapterSummary, tags=["admin"], dependencies=admin, responses=ERRORS)
    def remove_adapter(ref: str) -> dict[str, Any]:
        return service.remove(ref)

    @app.get("/adapters/{ref}/download", tags=["adapters"], response_class=FileResponse,
             responses={200: {"content": {"application/zip": {}}, "description": "zip of the exported files"},
                        **ERRORS})  # fmt: skip
    def download(ref: str, format: Annotated[str, Query(description="diffusers | peft | kohya")]) -> FileResponse:
        from registry.formats import writers

        if format not in writers():
            raise ApiError(
                400, "bad_request", f"unknown export format {format!r}; known: {', '.join(sorted(writers()))}"
            )
        info = service.get(ref)
        tmp = Path(tempfile.mkdtemp(prefix="loradex-export-"))
        try:
            out = tmp / "out"
            files = service.export(info["id"], format, out)
            archive = tmp / "export.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
                for f in files:
                    z.write(f, Path(f).relative_to(out).as_posix())
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        name = re.sub(r"[^\w.-]+", "_", info["name"]).strip("._")[:100] or f"adapter-{info['id']}"
        return FileResponse(archive, media_type="application/zip", filename=f"{name}-{format}.zip",
                            background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))  # fmt: skip

    @app.get("/adapters/{ref}/preview.png", tags=["adapters"], response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "base (top row) vs adapter (bottom row)"},
                        **ERRORS})  # fmt: skip
    def preview(ref: str) -> Response:
        """The adapter rendered through its family's base pipeline, under the bare base; rendered
        once, then cached. ``no_preview`` (404) for families without a pipeline."""
        png = service.preview(ref)
        return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})

    @app.post("/search", response_model=SearchResponse, tags=["search"], responses=ERRORS)
    def search(req: SearchRequest) -> SearchResponse:
        hits = service.search(req.prompt, req.k, mode=req.mode, family=req.family, format=req.format,
                              origin=req.origin, tags=req.tags)  # fmt: skip
        return SearchResponse(prompt=req.prompt, mode=req.mode, hits=hits)

    @app.post("/ingest", status_code=202, response_model=Job, tags=["admin"], dependencies=admin,
              openapi_extra=INGEST_BODY, responses=ERRORS)  # fmt: skip
    async def ingest(request: Request, response: Response) -> Job:
        """Upload adapter files, sidecars or zips (multipart field ``files``); the ingestion runs
        as a job: poll ``GET /jobs/{id}``. The token is checked before the body is read."""
        async with request.form(max_files=limits.max_files, max_fields=8) as form:
            parts = [v for v in form.getlist("files") if isinstance(v, UploadFile)]
            folder = form.get("folder")
            if not parts:
                raise ApiError(400, "bad_request", "no files: send multipart/form-data with one or more 'files' parts")
            job_id = uuid.uuid4().hex
            root = uploads / job_id
            named = [(p.filename or "", p.file) for p in parts]
            await run_in_threadpool(stage_uploads, named, root, limits, folder if isinstance(folder, str) else None)
        job = jobs.submit_ingest(job_id, service, root)
        response.headers["Location"] = f"/jobs/{job.id}"
        return job

    @app.post("/encoders/train", status_code=202, response_model=Job, tags=["admin"], dependencies=admin,
              responses=ERRORS)  # fmt: skip
    def train_encoder(req: TrainEncoderRequest, response: Response) -> Job:
        """Train the weight encoder of ``family`` on its described adapters (plus ``texts``: adapter
        name or sha256 → extra descriptions); runs as a job: poll ``GET /jobs/{id}``."""
        from encoders.weight.train import TrainConfig

        cfg = TrainConfig(epochs=req.epochs, val_fraction=req.val_fraction, seed=req.seed)
        texts = {k: {"texts": v, "task": None, "group": None} for k, v in (req.texts or {}).items()} or None
        job = jobs.submit_train(service, req.family, cfg, texts)
        response.headers["Location"] = f"/jobs/{job.id}"
        return job

    @app.get("/jobs", response_model=list[Job], tags=["admin"], dependencies=admin, responses=ERRORS)
    def list_jobs() -> list[Job]:
        return jobs.list()

    @app.get("/jobs/{job_id}", response_model=Job, tags=["admin"], dependencies=admin, responses=ERRORS)
    def get_job(job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id!r} (jobs are kept in memory by the server that ran them)")
        return job

    return app


__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "ApiError", "SearchError", "UploadLimits", "create_app"]
