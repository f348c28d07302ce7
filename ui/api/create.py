"""Making adapters and running them together: ``GET /generators``, ``POST /generate``,
``POST /merge`` and ``POST /compose``. The three posts run as jobs (admin): poll ``GET /jobs/{id}``;
the job's ``output`` is the ``GenerateResult`` / ``MergeOutcome`` / ``ComposeResult`` as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from loradex.types import Job
from ui.api.deps import ADMIN, JobsDep, ServiceDep
from ui.api.schemas import ERRORS, ComposeRequest, GenerateRequest, MergeRequest

router = APIRouter(tags=["generation and fusion"], responses=ERRORS)


@router.get("/generators")
def generators(service: ServiceDep) -> dict[str, dict[str, dict[str, Any]]]:
    """family → method → version, source (bundled | trained) and metrics (server paths omitted)."""
    return {fam: {m: {k: v for k, v in e.items() if k != "path"} for m, e in methods.items()}
            for fam, methods in service.generators().items()}  # fmt: skip


def _accepted(response: Response, job: Job) -> Job:
    response.headers["Location"] = f"/jobs/{job.id}"
    return job


@router.post("/generate", status_code=202, response_model=Job, dependencies=ADMIN)
def generate(req: GenerateRequest, response: Response, service: ServiceDep, jobs: JobsDep) -> Job:
    """Generate an adapter from a description (and examples) and register it, as a job."""
    return _accepted(response, jobs.submit_task(service, "generate", req.model_dump(mode="json")))


@router.post("/merge", status_code=202, response_model=Job, dependencies=ADMIN)
def merge(req: MergeRequest, response: Response, service: ServiceDep, jobs: JobsDep) -> Job:
    """Merge registered adapters in weight space into a new registered adapter, as a job."""
    return _accepted(response, jobs.submit_task(service, "merge", req.model_dump(mode="json")))


@router.post("/compose", status_code=202, response_model=Job, dependencies=ADMIN)
def compose(req: ComposeRequest, response: Response, service: ServiceDep, jobs: JobsDep) -> Job:
    """Compose adapters at run time (images for diffusion families, outputs for language ones), as a job."""
    return _accepted(response, jobs.submit_task(service, "compose", req.model_dump(mode="json")))
