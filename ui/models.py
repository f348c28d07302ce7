"""Types shared by the REST API (``ui.api``) and the HTTP client (``loradex.client``).

Plain dataclasses (no pydantic, no torch) so that the client stays cheap to import; FastAPI
turns them into the OpenAPI schema. ``SearchHit`` and ``IngestReport`` are the very classes
``LocalService`` returns, so results from the client compare equal to in-process ones.
Each type has ``from_dict`` (JSON → object, for the client) and, where the service has no
method for it yet, ``from_service`` (what ``LocalService`` would return).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from registry.ingest import IngestReport, IngestResult
from ui.service import SEARCH_MODES, SearchHit

if TYPE_CHECKING:  # pragma: no cover
    from ui.service import LocalService

__all__ = [
    "ERROR_CODES",
    "JOB_STATES",
    "SEARCH_MODES",
    "EncoderInfo",
    "ErrorInfo",
    "Health",
    "IndexInfo",
    "IngestReport",
    "IngestResult",
    "Job",
    "SearchHit",
    "Stats",
    "hit_from_dict",
    "report_from_dict",
]

# Stable error codes of the REST API → HTTP status. Clients switch on the code, never on the text.
ERROR_CODES: dict[str, int] = {
    "bad_request": 400,  # malformed or invalid request (bad search mode, unknown export format …)
    "unauthorized": 401,  # admin endpoint without a valid bearer token
    "forbidden": 403,  # admin endpoints disabled (the server has no admin token)
    "not_found": 404,  # no such adapter / job / route
    "no_preview": 404,  # the adapter's family has no preview pipeline (its fingerprint is the picture)
    "method_not_allowed": 405,
    "conflict": 409,  # same content already registered
    "too_large": 413,  # upload over the size limit; zip over the member-count or unpacked-size cap
    "refused": 422,  # unsafe upload (absolute path, '..', symlink, encrypted zip) or unreadable adapter
    "internal": 500,  # a bug: details are in the server log, never in the response
    "unavailable": 503,  # the database cannot be reached
}

JOB_STATES = ("queued", "running", "done", "failed")


@dataclass
class ErrorInfo:
    code: str  # one of ERROR_CODES
    message: str  # one human sentence; names the bad value and the valid choices


@dataclass
class Health:
    status: str  # "ok"
    version: str  # loradex version
    database: str  # SQLAlchemy dialect: sqlite | postgresql
    adapters: int  # adapters in the registry

    @classmethod
    def from_service(cls, svc: LocalService) -> Health:
        from loradex import __version__

        return cls("ok", __version__, svc.registry.engine.dialect.name, svc.registry.count())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Health:
        return cls(str(d["status"]), str(d["version"]), str(d["database"]), int(d["adapters"]))


@dataclass
class IndexInfo:
    kind: str  # text | weights
    size: int  # vectors in the index
    dim: int | None  # vector dimension (None while empty)
    version: str | None  # encoder version of the indexed vectors
    index_type: str  # flat | hnsw


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
    def from_service(cls, svc: LocalService) -> Stats:
        rows = svc.registry.list()
        indexes = [
            IndexInfo(kind, len(ix), ix.dim, ix.version, ix.index_type)
            for kind, ix in sorted(svc.registry.indexes.items())
        ]
        trained = {e["version"] for e in svc.registry.encoders("weights")}
        encoders = [EncoderInfo("text", None, svc.text_encoder.version, "bundled")]
        encoders += [
            EncoderInfo("weights", fam, ver, "trained" if ver in trained else "bundled")
            for fam, ver in sorted(svc.weight_embedder.families.items())
        ]
        return cls(
            adapters=len(rows),
            families=_counts(r["family"] for r in rows),
            formats=_counts(r["format"] for r in rows),
            origins=_counts(r["origin"] for r in rows),
            indexes=indexes,
            encoders=encoders,
        )

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
    """A long operation run by the server (ingestion of an upload, training an encoder); poll ``GET /jobs/{id}``."""

    id: str
    kind: str  # ingest | train-encoder
    status: str  # one of JOB_STATES
    done: int = 0  # units finished
    total: int | None = None  # units found (None until discovery has run)
    result: IngestReport | None = None  # results so far (paths relative to the upload)
    error: ErrorInfo | None = None  # set when status is "failed"
    created_at: float = 0.0  # unix time
    finished_at: float | None = None
    encoder: dict[str, Any] | None = None  # train-encoder: family, version, path, best metrics

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
        )


def report_from_dict(d: dict[str, Any]) -> IngestReport:
    """Inverse of ``IngestReport.to_dict`` (the counts are recomputed, not read)."""
    return IngestReport([IngestResult(**r) for r in d.get("results") or []])


def hit_from_dict(d: dict[str, Any]) -> SearchHit:
    return SearchHit(dict(d["adapter"]), float(d["score"]), dict(d.get("scores") or {}), str(d.get("why") or ""))


def _counts(values: Any) -> dict[str, int]:
    return dict(sorted(Counter(str(v) for v in values).items()))
