"""The composition root: registry + encoders + indexes, wired once. ``LocalService`` is the
embedded, in-process form; the REST API and the Python client expose the same methods.
"""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import RegistryError
from registry.ingest import IngestReport

SEARCH_MODES = ("hybrid", "weights", "text")


class SearchError(RegistryError):
    """A search request that cannot be answered (bad mode, empty prompt …)."""


@dataclass
class SearchHit:
    adapter: dict[str, Any]  # adapter summary (id, name, family, format, ranks, description …)
    score: float  # the ranking score for the requested mode
    scores: dict[str, float | None] = field(default_factory=dict)  # per signal: weights / text
    why: str = ""  # one line saying why this result is here

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LocalService:
    """In-process service over one data dir / database."""

    def __init__(
        self, home: str | Path | None = None, db_url: str | None = None, *, text_model: str | None = None
    ) -> None:
        from encoders.text import MetadataTextEmbedder, get_text_encoder
        from registry.store import Registry

        self.text_encoder = get_text_encoder(text_model)
        self.registry = Registry(home, db_url, embedders=[MetadataTextEmbedder(self.text_encoder)])
        self.registry.init()

    # -- registry ----------------------------------------------------------------------
    def ingest(self, paths: list[str | Path], **kw: Any) -> IngestReport:
        return self.registry.ingest(paths, **kw)

    def list(self, **filters: Any) -> builtins.list[dict[str, Any]]:
        return self.registry.list(**filters)

    def get(self, ref: str | int) -> dict[str, Any]:
        return self.registry.get(ref)

    def remove(self, ref: str | int) -> dict[str, Any]:
        return self.registry.remove(ref)

    def export(self, ref: str | int, fmt: str, out_dir: str | Path) -> builtins.list[Path]:
        return self.registry.export(ref, fmt, out_dir)

    # -- search ------------------------------------------------------------------------
    def search(
        self,
        prompt: str,
        k: int = 10,
        *,
        mode: str = "hybrid",
        family: str | None = None,
        format: str | None = None,
        origin: str | None = None,
        tags: builtins.list[str] | None = None,
    ) -> builtins.list[SearchHit]:
        """Prompt → top-k adapters with a per-signal score breakdown."""
        if mode not in SEARCH_MODES:
            raise SearchError(f"unknown search mode {mode!r}; known: {', '.join(SEARCH_MODES)}")
        if not prompt or not prompt.strip():
            raise SearchError("empty prompt")
        if k < 1:
            raise SearchError(f"k must be ≥ 1, got {k}")
        allowed = None
        if family or format or origin or tags:
            rows = self.registry.list(family=family, format=format, origin=origin)
            if tags:
                want = {t.strip().lower() for t in tags}
                rows = [r for r in rows if want <= set(r["tags"])]
            allowed = {r["id"] for r in rows}
        q = self.text_encoder.encode([prompt])[0]  # (dim,)
        signals: dict[str, dict[int, float]] = {}
        for kind, index in self.registry.indexes.items():
            if mode in (kind, "hybrid"):
                signals[kind] = dict(index.search(q, k * 4 if mode == "hybrid" else k, allowed))
        if mode == "weights" and "weights" not in signals:
            raise SearchError("no weight encoder is trained yet: use --mode text or hybrid")
        ids = set().union(*[s.keys() for s in signals.values()]) if signals else set()
        ranked = []
        for i in ids:
            parts = {kind: sig.get(i) for kind, sig in signals.items()}
            present = [v for v in parts.values() if v is not None]
            ranked.append((sum(present) / len(present), i, parts))
        ranked.sort(key=lambda t: (-t[0], t[1]))
        hits = []
        for score, i, parts in ranked[:k]:
            info = self.registry.get(i)
            summary = {key: info[key] for key in ("id", "name", "family", "format", "origin", "ranks", "description",
                                                  "trigger_words", "tags", "module_count", "sha256")}  # fmt: skip
            why = ", ".join(f"{kind} similarity {v:.2f}" for kind, v in parts.items() if v is not None)
            if "weights" not in self.registry.indexes:
                why += f"; no weight encoder for family {info['family']}: matched by metadata text only"
            hits.append(SearchHit(summary, round(score, 6), parts, why))
        return hits
