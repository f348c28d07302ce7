"""``POST /search``."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter

from loradex.errors import SearchError
from loradex.types import Filters
from ui.api.deps import ServiceDep
from ui.api.schemas import ERRORS, SearchRequest, SearchResponse

router = APIRouter(tags=["search"], responses=ERRORS)


@router.post("/search", response_model=SearchResponse)
def search(req: SearchRequest, service: ServiceDep) -> SearchResponse:
    filters = Filters(family=req.family, format=req.format, origin=req.origin, tags=tuple(req.tags or ()))
    images = None
    if req.images:
        try:
            images = [base64.b64decode(text, validate=True) for text in req.images]
        except (binascii.Error, ValueError):
            raise SearchError("images: each example picture must be a file's bytes in base64") from None
    hits = service.search(req.prompt, req.k, mode=req.mode, filters=filters, examples=req.examples, images=images)
    return SearchResponse(prompt=req.prompt, mode=req.mode, hits=hits, nothing_fits=hits.nothing_fits,
                          relevance_threshold=hits.threshold, message=hits.verdict(),
                          read=hits.read, reason=hits.reason)  # fmt: skip
