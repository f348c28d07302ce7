"""Admin endpoints (bearer token): ``POST /ingest`` (an upload, ingested as a job),
``POST /encoders/train`` and ``POST /encoders/text-map`` (jobs), ``GET /jobs`` and ``GET /jobs/{id}``."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from loradex.jobs import submit_ingest, submit_train_encoder, submit_train_text_map
from loradex.types import Job
from ui.api.deps import ADMIN, JobsDep, LimitsDep, ServiceDep
from ui.api.errors import ApiError
from ui.api.schemas import ERRORS, INGEST_BODY, TrainEncoderRequest, TrainTextMapRequest
from ui.api.uploads import stage_uploads

router = APIRouter(tags=["admin"], dependencies=ADMIN, responses=ERRORS)


@router.post("/ingest", status_code=202, response_model=Job, openapi_extra=INGEST_BODY)
async def ingest(request: Request, response: Response, service: ServiceDep, jobs: JobsDep, limits: LimitsDep) -> Job:
    """Upload adapter files, sidecars or zips (multipart field ``files``); the ingestion runs
    as a job: poll ``GET /jobs/{id}``. The token is checked before the body is read."""
    async with request.form(max_files=limits.max_files, max_fields=8) as form:
        parts = [v for v in form.getlist("files") if isinstance(v, UploadFile)]
        folder = form.get("folder")
        if not parts:
            raise ApiError(400, "bad_request", "no files: send multipart/form-data with one or more 'files' parts")
        job_id = uuid.uuid4().hex
        root = service.uploads / job_id
        named = [(p.filename or "", p.file) for p in parts]
        await run_in_threadpool(stage_uploads, named, root, limits, folder if isinstance(folder, str) else None)
    job = submit_ingest(jobs, service, root, job_id)
    response.headers["Location"] = f"/jobs/{job.id}"
    return job


@router.post("/encoders/train", status_code=202, response_model=Job)
def train_encoder(req: TrainEncoderRequest, response: Response, service: ServiceDep, jobs: JobsDep) -> Job:
    """Train the weight encoder of ``family`` on its described adapters (plus ``texts``: adapter
    name or sha256 → extra descriptions); runs as a job: poll ``GET /jobs/{id}``."""
    from encoders.weight.train import TrainConfig

    cfg = TrainConfig(epochs=req.epochs, val_fraction=req.val_fraction, seed=req.seed)
    texts = {k: {"texts": v, "task": None, "group": None} for k, v in (req.texts or {}).items()} or None
    job = submit_train_encoder(jobs, service, req.family, cfg, texts)
    response.headers["Location"] = f"/jobs/{job.id}"
    return job


@router.post("/encoders/text-map", status_code=202, response_model=Job)
def train_text_map(req: TrainTextMapRequest, response: Response, service: ServiceDep, jobs: JobsDep) -> Job:
    """Fit the registry's text map on its adapters' metadata texts and ``texts`` (adapter name or
    sha256 → paraphrases), record it and re-embed the text index (with ``tune``: fine-tune the text
    encoder too); runs as a job: poll ``GET /jobs/{id}``, whose ``output`` holds the map's version and
    metrics."""
    texts = {k: {"texts": v} for k, v in (req.texts or {}).items()} or None
    config = req.model_dump(exclude={"texts", "tune"}, exclude_none=True)
    tune = req.tune.model_dump(exclude_none=True) if req.tune is not None else None
    job = submit_train_text_map(jobs, service, texts, config, tune)
    response.headers["Location"] = f"/jobs/{job.id}"
    return job


@router.get("/jobs", response_model=list[Job])
def list_jobs(jobs: JobsDep) -> list[Job]:
    return jobs.list()


@router.get("/jobs/{job_id}", response_model=Job)
def get_job(job_id: str, jobs: JobsDep) -> Job:
    return jobs.get(job_id)
