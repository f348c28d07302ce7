"""Public types of loradex: what ``LocalService`` and ``Client`` take and return.

Plain dataclasses (no pydantic, no torch), so the client stays cheap to import; FastAPI turns
them into the OpenAPI schema. Results from the client compare equal to in-process ones. Each
type read from JSON has ``from_dict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from registry.filters import Filters
from registry.index import INDEX_TYPES
from registry.ingest import IngestReport, IngestResult

__all__ = [
    "INDEX_TYPES",
    "JOB_STATES",
    "SEARCH_MODES",
    "EncoderInfo",
    "ErrorInfo",
    "Filters",
    "Health",
    "IndexInfo",
    "IngestReport",
    "IngestResult",
    "Job",
    "ComposeResult",
    "GenerateResult",
    "MergeOutcome",
    "SearchHit",
    "Stats",
    "hit_from_dict",
    "public_detail",
    "report_from_dict",
]

SEARCH_MODES = ("hybrid", "weights", "text")
JOB_STATES = ("queued", "running", "done", "failed")


@dataclass
class SearchHit:
    adapter: dict[str, Any]  # adapter summary (id, name, family, format, ranks, description …)
    score: float  # the ranking score for the requested mode
    scores: dict[str, float | None] = field(default_factory=dict)  # per signal: weights / text
    why: str = ""  # one line saying why this result is here
    # P(the adapter does what was asked), calibrated across queries (loradex.relevance); None: unknown
    relevance: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SearchResults(list[SearchHit]):
    """A search's hits, best first (a plain list), with its verdict: ``nothing_fits`` is True when
    no candidate is likely to do what was asked (every calibrated relevance below
    ``threshold``, and the best hit names no setting asked and goes no way asked; or its family has
    no member with the setting asked), False when one is, None when that cannot be told
    (``loradex.relevance``, ``loradex.search.Searcher.search``).
    ``read``: the prompt as search read it when it put spelling slips right (``loradex.spelling``),
    else None. ``reason``: why nothing fits when search can say more than "every relevance is low"
    (two parts the registry holds apart, a conversion the other way round …), else None."""

    def __init__(self, hits: Any = (), nothing_fits: bool | None = None, threshold: float | None = None,
                 read: str | None = None, reason: str | None = None) -> None:  # fmt: skip
        super().__init__(hits)
        self.nothing_fits, self.threshold, self.read, self.reason = nothing_fits, threshold, read, reason

    def verdict(self) -> str:
        """One line for people: empty unless nothing fits."""
        if not self.nothing_fits:
            return ""
        if self.reason:
            return f"Nothing in the registry does this: {self.reason}. The closest are below."
        known = [h.relevance for h in self if h.relevance is not None]
        why = f" (best relevance {max(known):.1%}, under {self.threshold:.1%})" if known and self.threshold else ""
        return (f"Nothing in the registry is likely to do this{why}; the closest are below. A generator can make "
                "one from the description.")  # fmt: skip


@dataclass
class ErrorInfo:
    code: str  # one of loradex.errors.ERROR_CODES
    message: str  # one human sentence; names the bad value and the valid choices


@dataclass
class Health:
    status: str  # "ok", or "starting" while a server ingests its bundled adapters
    version: str  # loradex version
    database: str  # SQLAlchemy dialect: sqlite | postgresql
    adapters: int  # adapters in the registry
    detail: str = ""  # what a "starting" server is doing (and its job id)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Health:
        return cls(
            str(d["status"]), str(d["version"]), str(d["database"]), int(d["adapters"]), str(d.get("detail", ""))
        )


@dataclass
class IndexInfo:
    kind: str  # text | weights
    size: int  # vectors in the index
    dim: int | None  # vector dimension (None while empty)
    version: str | None  # encoder version of the indexed vectors
    index_type: str  # flat | fp16 | hnsw | ivf | ivf_sq8


@dataclass
class EncoderInfo:
    kind: str  # text | weights
    family: str | None  # base family of a weight encoder; None for the text encoder
    version: str  # stored beside every embedding it made
    source: str  # bundled | trained


@dataclass
class Stats:
    adapters: int
    families: dict[str, int] = field(default_factory=dict)  # family → adapters
    formats: dict[str, int] = field(default_factory=dict)  # format → adapters
    origins: dict[str, int] = field(default_factory=dict)  # ingested | generated | merged …
    indexes: list[IndexInfo] = field(default_factory=list)
    encoders: list[EncoderInfo] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stats:
        return cls(
            adapters=int(d["adapters"]),
            families=dict(d.get("families") or {}),
            formats=dict(d.get("formats") or {}),
            origins=dict(d.get("origins") or {}),
            indexes=[IndexInfo(**i) for i in d.get("indexes") or []],
            encoders=[EncoderInfo(**e) for e in d.get("encoders") or []],
        )


@dataclass
class Job:
    """A long operation run on the job runner (``loradex.jobs``); poll ``job(id)`` / ``GET /jobs/{id}``."""

    id: str
    kind: str  # ingest | train-encoder | any kind a caller submits
    status: str  # one of JOB_STATES
    done: int = 0  # units finished
    total: int | None = None  # units found (None until known)
    result: IngestReport | None = None  # ingest: results so far (paths relative to the upload)
    error: ErrorInfo | None = None  # set when status is "failed"
    created_at: float = 0.0  # unix time
    finished_at: float | None = None
    encoder: dict[str, Any] | None = None  # train-encoder: family, version, best metrics
    output: dict[str, Any] | None = None  # other kinds: what the job made (JSON)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        return cls(
            id=str(d["id"]),
            kind=str(d["kind"]),
            status=str(d["status"]),
            done=int(d.get("done") or 0),
            total=d.get("total"),
            result=report_from_dict(d["result"]) if d.get("result") is not None else None,
            error=ErrorInfo(**d["error"]) if d.get("error") else None,
            created_at=float(d.get("created_at") or 0.0),
            finished_at=d.get("finished_at"),
            encoder=d.get("encoder"),
            output=d.get("output"),
        )


def public_detail(info: dict[str, Any]) -> dict[str, Any]:
    """An adapter detail fit for anyone: where it was ingested from reduced to the file or folder
    name (the server's absolute path is for admins only)."""
    src = info.get("source")
    if not src:
        return info
    parts = str(src).replace("\\", "/").rstrip("/").split("/")
    generic = parts[-1].startswith(("pytorch_lora_weights", "adapter_model", "adapter_config"))
    return {**info, "source": "/".join(parts[-2:] if generic else parts[-1:])}  # the folder names a generic file


def report_from_dict(d: dict[str, Any]) -> IngestReport:
    """Inverse of ``IngestReport.to_dict`` (the counts are recomputed, not read)."""
    return IngestReport([IngestResult(**r) for r in d.get("results") or []])


def hit_from_dict(d: dict[str, Any]) -> SearchHit:
    rel = d.get("relevance")
    return SearchHit(dict(d["adapter"]), float(d["score"]), dict(d.get("scores") or {}), str(d.get("why") or ""),
                     None if rel is None else float(rel))  # fmt: skip


def _made(d: dict[str, Any], key: str) -> tuple[dict[str, Any], dict[str, Any], float, bool]:
    """(adapter, ``key``, seconds, duplicate) of a made adapter's JSON."""
    return dict(d["adapter"]), dict(d.get(key) or {}), float(d.get("seconds") or 0.0), bool(d.get("duplicate"))


@dataclass
class GenerateResult:
    """A generated adapter, registered (``origin=generated``)."""

    adapter: dict[str, Any]  # the registered adapter's detail (id, name, sha256, parents …)
    lineage: dict[str, Any]  # generator, version, method, seed, rank, experts [{name, weight}], chosen …
    seconds: float = 0.0  # generation time (the generator's forward pass), without writing and ingesting
    duplicate: bool = False  # the same bytes were already registered (same request, same seed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerateResult:
        return cls(*_made(d, "lineage"))


@dataclass
class MergeOutcome:
    """A merge of registered adapters, registered itself (``origin=merged``)."""

    adapter: dict[str, Any]  # the merged adapter's detail, with its parents (weight, method)
    info: dict[str, Any]  # strategy, weights, rank, relative_error (when approximated), warnings
    seconds: float = 0.0
    duplicate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MergeOutcome:
        return cls(*_made(d, "info"))


@dataclass
class ComposeResult:
    """Adapters composed at run time in their family's base pipeline (nothing is registered)."""

    adapters: list[dict[str, Any]]  # id, name, family, format, description (+ picked_for with auto) of each
    family: str
    strategy: str  # gate | linear | switch | composite | chain | merge:<strategy>
    weights: list[float] = field(default_factory=list)  # per adapter: routed or static weight
    images: list[bytes] = field(default_factory=list)  # PNG per image (diffusion families)
    outputs: list[str] = field(default_factory=list)  # one per input (language families)
    gate_png: bytes | None = None  # gate values per layer over timesteps, when a gate ran
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: PNGs as base64 strings."""
        import base64

        d = asdict(self)
        d["images"] = [base64.b64encode(b).decode() for b in self.images]
        d["gate_png"] = base64.b64encode(self.gate_png).decode() if self.gate_png is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ComposeResult:
        import base64

        gate = d.get("gate_png")
        return cls(
            adapters=[dict(a) for a in d.get("adapters") or []],
            family=str(d["family"]),
            strategy=str(d["strategy"]),
            weights=[float(x) for x in d.get("weights") or []],
            images=[base64.b64decode(s) for s in d.get("images") or []],
            outputs=[str(s) for s in d.get("outputs") or []],
            gate_png=base64.b64decode(gate) if gate else None,
            info=dict(d.get("info") or {}),
            seconds=float(d.get("seconds") or 0.0),
        )
