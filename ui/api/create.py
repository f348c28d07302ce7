"""Making adapters and running them together: ``GET /generators``, ``POST /generate``,
``POST /merge`` and ``POST /compose``. The three posts run as jobs (admin): poll ``GET /jobs/{id}``;
the job's ``output`` is the ``GenerateResult`` / ``MergeOutcome`` / ``ComposeResult`` as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from loradex.jobs import JobHandle
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

    def work(h: JobHandle) -> dict[str, Any]:
        out = service.generate(req.description, family=req.family, method=req.method, examples=req.examples,
                               seed=req.seed, rank=req.rank, progress=lambda d, t: h.update(done=d, total=t))  # fmt: skip
        return out.to_dict()  # type: ignore[no-any-return]

    return _accepted(response, jobs.submit("generate", work, total=2, what="generation"))


@router.post("/merge", status_code=202, response_model=Job, dependencies=ADMIN)
def merge(req: MergeRequest, response: Response, service: ServiceDep, jobs: JobsDep) -> Job:
    """Merge registered adapters in weight space into a new registered adapter, as a job."""

    def work(h: JobHandle) -> dict[str, Any]:
        out = service.merge(req.adapters, req.weights, strategy=req.strategy, rank=req.rank, seed=req.seed,
                            name=req.name)  # fmt: skip
        return out.to_dict()  # type: ignore[no-any-return]

    return _accepted(response, jobs.submit("merge", work, what="merge"))


@router.post("/compose", status_code=202, response_model=Job, dependencies=ADMIN)
def compose(req: ComposeRequest, response: Response, service: ServiceDep, jobs: JobsDep) -> Job:
    """Compose adapters at run time (images for diffusion families, outputs for language ones), as a job."""

    def work(h: JobHandle) -> dict[str, Any]:
        out = service.compose(req.prompt, adapters=req.adapters, auto=req.auto, strategy=req.strategy,
                              weights=req.weights, inputs=req.inputs, family=req.family, seed=req.seed,
                              n_images=req.n_images, steps=req.steps,
                              progress=lambda d, t: h.update(done=d, total=t))  # fmt: skip
        return out.to_dict()  # type: ignore[no-any-return]

    return _accepted(response, jobs.submit("compose", work, what="composition"))
