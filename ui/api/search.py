"""``POST /search``."""

from __future__ import annotations

from fastapi import APIRouter

from loradex.types import Filters
from ui.api.deps import ServiceDep
from ui.api.schemas import ERRORS, SearchRequest, SearchResponse

router = APIRouter(tags=["search"], responses=ERRORS)


@router.post("/search", response_model=SearchResponse)
def search(req: SearchRequest, service: ServiceDep) -> SearchResponse:
    filters = Filters(family=req.family, format=req.format, origin=req.origin, tags=tuple(req.tags or ()))
    hits = service.search(req.prompt, req.k, mode=req.mode, filters=filters, examples=req.examples)
    return SearchResponse(prompt=req.prompt, mode=req.mode, hits=hits, nothing_fits=hits.nothing_fits,
                          relevance_threshold=hits.threshold, message=hits.verdict(),
                          read=hits.read)  # fmt: skip
