"""Request and response bodies of the REST API (pydantic), beside the dataclasses of ``loradex.types``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from loradex.types import SearchHit

PICTURE_B64_CHARS = 4 * (20 * 2**20) // 3 + 4  # one example picture of at most 20 MiB (loradex.verify_images)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(max_length=4000, description="what the adapter should do or look like")
    k: int = Field(10, le=1000, description="how many results")
    mode: str = Field("hybrid", description="hybrid | weights | text")
    family: str | None = None
    format: str | None = None
    origin: str | None = None
    tags: list[str] | None = Field(None, description="every one of these tags is required")
    examples: list[tuple[str, str]] | None = Field(
        None,
        max_length=16,
        description="input → output pairs: candidates are run and ranked by how many they reproduce",
    )
    images: list[Annotated[str, Field(max_length=PICTURE_B64_CHARS)]] | None = Field(
        None,
        max_length=8,
        description="example pictures (PNG, JPEG … as base64): an image family's candidates are rendered on "
        "its base and ranked by how much they look like them",
    )


class TryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[str] = Field(min_length=1, max_length=8, description="input strings (LLM) or prompts (diffusion)")


class SearchResponse(BaseModel):
    prompt: str
    mode: str
    hits: list[SearchHit]
    # True: no hit is likely to do what was asked (every relevance under relevance_threshold)
    nothing_fits: bool | None = None
    relevance_threshold: float | None = None
    message: str = ""  # one line for people when nothing fits
    read: str | None = None  # the prompt as search read it, when it put spelling slips right
    reason: str | None = None  # why nothing fits, when search can say more than "every relevance is low"


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
    missing_files: list[str] = Field(default=[], description="stored files that are gone (ingest the file again)")


class TrainEncoderRequest(BaseModel):
    family: str = Field(min_length=1, max_length=64)
    epochs: int = Field(default=300, ge=1, le=5000)
    val_fraction: float = Field(default=0.15, ge=0.0, lt=1.0)
    seed: int = 0
    texts: dict[str, list[str]] | None = None


class TextTuneRequest(BaseModel):
    """A text-encoder fine-tune with the text map (``encoders.registry_text_tune.TuneConfig``); fields
    left out keep its defaults."""

    model_config = ConfigDict(extra="forbid")
    rank: int | None = Field(default=None, ge=1, le=64)
    lr: float | None = Field(default=None, gt=0.0)
    epochs: int | None = Field(default=None, ge=1, le=50)
    batch: int | None = Field(default=None, ge=4, le=512)
    scale: float | None = Field(default=None, gt=0.0)
    seed: int | None = None
    max_steps: int | None = Field(default=None, ge=1)


class TrainTextMapRequest(BaseModel):
    """Fit the registry's text map; fields left out keep the registry's defaults
    (``encoders.registry_text_map.REGISTRY_MAP_CONFIG``)."""

    model_config = ConfigDict(extra="forbid")
    texts: dict[str, list[str]] | None = Field(
        default=None, description="adapter name or sha256 → paraphrases (what a texts file holds)"
    )
    steps: int | None = Field(default=None, ge=1, le=5000)
    lr: float | None = Field(default=None, gt=0.0)
    temperature: float | None = Field(default=None, gt=0.0)
    reg: float | None = Field(default=None, ge=0.0)
    seed: int | None = None
    tune: TextTuneRequest | None = Field(
        default=None, description="fine-tune the text encoder too (``encoders.registry_text_tune``); null: no tune"
    )


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


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = Field(max_length=4000, description="what the new adapter should do or look like")
    family: str = Field(description="base family (GET /generators lists those with a generator)")
    method: str | None = Field(None, description="generator method; default: the family's best available")
    examples: list[tuple[str, str]] | None = Field(None, max_length=32, description="input → output pairs")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    rank: int | None = Field(None, ge=1, le=256)


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    adapters: list[str] = Field(min_length=2, max_length=16, description="ids or sha256 prefixes")
    weights: list[float] | None = Field(None, description="one per adapter (negative: subtract); default equal")
    strategy: str = Field(
        "cat", description="cat | svd | ties | dare_linear | dare_ties | magnitude_prune | lego | zip"
    )
    rank: int | None = Field(None, ge=1, le=1024)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    name: str | None = Field(None, max_length=120, pattern=r"^[A-Za-z0-9._-]+$")
    options: dict[str, Any] | None = Field(
        None, max_length=16, description="the strategy's options (density, majority_sign …; zip: steps, lr, prompts …)"
    )


class ComposeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(max_length=4000, description="what to render, or the task for a language model")
    adapters: list[str] | None = Field(None, max_length=8, description="ids; or leave empty and set auto")
    auto: int | None = Field(None, ge=1, le=8, description="retrieve the top K adapters for the prompt")
    strategy: str = Field(
        "auto",
        description="auto (chain for a language request of steps, else gate) | gate | linear | switch | "
        "composite | chain | merge:<strategy>",
    )
    weights: list[float] | None = None
    inputs: list[str] | None = Field(None, max_length=64, description="language families: inputs to run")
    family: str | None = None
    seed: int = Field(0, ge=0, le=2**31 - 1)
    n_images: int = Field(1, ge=1, le=8)
    steps: int | None = Field(None, ge=1, le=200)
    options: dict[str, Any] | None = Field(
        None, max_length=16, description="with merge:<strategy>: the merge's options (merge:zip: steps, samples …)"
    )
