"""Request and response bodies of the REST API (pydantic), beside the dataclasses of ``loradex.types``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loradex.types import SearchHit


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


class TrainEncoderRequest(BaseModel):
    family: str = Field(min_length=1, max_length=64)
    epochs: int = Field(default=300, ge=1, le=5000)
    val_fraction: float = Field(default=0.15, ge=0.0, lt=1.0)
    seed: int = 0
    texts: dict[str, list[str]] | None = None


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
