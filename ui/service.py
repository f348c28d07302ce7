"""The composition root: registry + encoders + indexes, wired once. ``LocalService`` is the
embedded, in-process form; the REST API and the Python client expose the same methods.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
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


MIN_SPREAD = 0.1  # cosine spread below which a signal counts as uninformative for a query
# How much each signal counts in hybrid search. The weight encoder is trained for its family's
# adapters and separates sibling tasks the generic text encoder puts close together, so it leads;
# metadata text still breaks ties and finds adapters of tasks the encoder never saw.
SIGNAL_WEIGHTS = {"weights": 0.7, "text": 0.3}


def fuse(signals: dict[str, dict[int, float]], weights: dict[str, float] | None = None) -> dict[int, float]:
    """Hybrid score: per signal, cosines standardised over the candidate pool, then a weighted mean
    (``SIGNAL_WEIGHTS``) over the signals an adapter has. Standardising puts the weight encoder's wide
    cosines and the text encoder's narrow ones on one scale, so a signal that singles out one adapter
    is not drowned by one that finds everything roughly alike; the spread is floored at ``MIN_SPREAD``
    so a signal that is flat for this query cannot reorder the other."""
    weights = SIGNAL_WEIGHTS if weights is None else weights
    num: dict[int, float] = {}
    den: dict[int, float] = {}
    for kind, scores in signals.items():
        if not scores:
            continue
        w = weights.get(kind, 1.0)
        vals = list(scores.values())
        mean = sum(vals) / len(vals)
        std = max((sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5, MIN_SPREAD)
        for i, v in scores.items():
            num[i] = num.get(i, 0.0) + w * (v - mean) / std
            den[i] = den.get(i, 0.0) + w
    return {i: num[i] / den[i] for i in num}


class LocalService:
    """In-process service over one data dir / database."""

    def __init__(
        self,
        home: str | Path | None = None,
        db_url: str | None = None,
        *,
        text_model: str | None = None,
        index_type: str = "flat",
    ) -> None:
        from encoders.text import MetadataTextEmbedder, get_text_encoder
        from encoders.weight.embedder import WeightEmbedder
        from registry.store import Registry

        self.text_encoder = get_text_encoder(text_model)
        self.weight_embedder = WeightEmbedder()
        self.registry = Registry(
            home, db_url, embedders=[MetadataTextEmbedder(self.text_encoder), self.weight_embedder],
            index_type=index_type,
        )  # fmt: skip
        self.weight_embedder.set_sources(lambda: [Path(e["path"]) for e in self.registry.encoders("weights")])
        self.registry.init()
        from ui.previews import Previewer

        self.previews = Previewer(Path(self.registry.home) / "cache" / "previews")

    # -- registry ----------------------------------------------------------------------
    def ingest(self, paths: Sequence[str | Path], **kw: Any) -> IngestReport:
        return self.registry.ingest(paths, **kw)

    def list(self, **filters: Any) -> builtins.list[dict[str, Any]]:
        return self.registry.list(**filters)

    def get(self, ref: str | int) -> dict[str, Any]:
        return self.registry.get(ref)

    def remove(self, ref: str | int) -> dict[str, Any]:
        return self.registry.remove(ref)

    def export(self, ref: str | int, fmt: str, out_dir: str | Path) -> builtins.list[Path]:
        return self.registry.export(ref, fmt, out_dir)

    def preview(self, ref: str | int) -> bytes:
        """PNG: the adapter rendered through its family's base pipeline (bottom row) under the bare
        base (top row). ``ui.previews.PreviewUnavailableError`` when the family has no pipeline."""
        return self.previews.png(self.registry, self.registry.get(ref))

    def health(self) -> Any:
        """``ui.models.Health`` (what ``GET /health`` answers)."""
        from ui.models import Health

        return Health.from_service(self)

    def stats(self) -> Any:
        """``ui.models.Stats``: counts by family / format / origin, index sizes, encoders."""
        from ui.models import Stats

        return Stats.from_service(self)

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
        """Prompt → top-k adapters with a per-signal score breakdown.

        ``text``: cosine of the prompt with the adapter's metadata text; ``weights``: cosine with
        its weight embedding (trained into the same space); ``hybrid``: both signals computed
        exactly for every candidate either index proposed, fused by ``fuse`` (the score is then
        a standardised similarity, not a cosine; ``scores`` keeps the cosines).
        """
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
        kinds = [kd for kd in ("weights", "text") if mode in (kd, "hybrid")]
        if mode == "weights":
            weighed = self.registry.indexes["weights"].ids
            if not (weighed & allowed if allowed is not None else weighed):
                have = ", ".join(sorted(self.weight_embedder.families)) or "none yet"
                raise SearchError(
                    "no weight encoder covers these adapters (families with one: "
                    f"{have}); use --mode text or hybrid, or train one with loradex train-encoder"
                )
        q = self.text_encoder.encode([prompt])[0]  # (dim,)
        pool = k * 4 if mode == "hybrid" else k
        # kind → [(query vector, ids it may score (None: all allowed), ids it must not score)]
        queries: dict[str, builtins.list[tuple[Any, set[int] | None, set[int] | None]]]
        queries = {kind: [(q, allowed, None)] for kind in kinds}
        if "weights" in kinds:
            queries["weights"] = self._weight_queries(q, allowed)
        candidates: set[int] = set()
        for kind in kinds:
            for vec, ids, excluded in queries[kind]:
                candidates.update(i for i, _ in self.registry.indexes[kind].search(vec, pool, ids, excluded))
        signals: dict[str, dict[int, float]] = {}
        pooled = sorted(candidates)
        for kind in kinds:
            signals[kind] = {}
            for vec, ids, excluded in queries[kind]:
                mine = [i for i in pooled if (ids is None or i in ids) and not (excluded and i in excluded)]
                signals[kind].update(self.registry.indexes[kind].score_ids(vec, mine))
        live = [kind for kind in kinds if signals[kind]]
        fused = fuse(signals) if len(live) > 1 else (signals[live[0]] if live else {})
        ranked = []
        for i in candidates:
            parts: dict[str, float | None] = {kind: signals[kind].get(i) for kind in kinds}
            if i in fused:
                ranked.append((fused[i], i, parts))
        ranked.sort(key=lambda t: (-t[0], t[1]))
        encoded = self.weight_embedder.families
        top = ranked[:k]
        found = self.registry.hits([i for _, i, _ in top])  # one query for all hits
        hits = []
        for score, i, parts in top:
            info = found.get(i)
            if info is None:  # removed between the index search and the fetch
                continue
            summary = {key: info[key] for key in ("id", "name", "family", "format", "origin", "ranks", "description",
                                                  "trigger_words", "tags", "module_count", "sha256")}  # fmt: skip
            why = ", ".join(f"{kind} similarity {v:.2f}" for kind, v in parts.items() if v is not None)
            if info["family"] not in encoded:
                why += f"; no weight encoder for family {info['family']}: matched by metadata text only"
            elif parts.get("text") is None and "text" in kinds:
                why += "; no description: matched by its weights"
            hits.append(SearchHit(summary, score, parts, why))
        return hits

    def _weight_queries(
        self, q: Any, allowed: set[int] | None
    ) -> builtins.list[tuple[Any, set[int] | None, set[int] | None]]:
        """The weights signal's queries: families whose encoder has a query head score the prompt
        through it (each against its own adapters only); every other adapter gets the prompt as is."""
        heads = self.weight_embedder.query_families()
        by_family = self.registry.ids_of_families(heads) if heads else {}
        headed: set[int] = set().union(*by_family.values())
        if not headed:
            return [(q, allowed, None)]
        out: builtins.list[tuple[Any, set[int] | None, set[int] | None]] = []
        for family, ids in by_family.items():
            mine = ids if allowed is None else ids & allowed
            if mine:
                out.append((self.weight_embedder.query(family, q), mine, None))
        out.append((q, allowed, headed))
        return out

    # -- encoders ----------------------------------------------------------------------
    def train_encoder(self, family: str, **kw: Any) -> dict[str, Any]:
        """Train a weight encoder for ``family`` on the registry's described adapters, record it,
        and re-embed (see ``encoders.weight.registry_training``)."""
        from encoders.weight.registry_training import train_from_registry

        result = train_from_registry(self.registry, family, self.text_encoder, **kw)
        self.add_encoder(Path(result["path"]), result["metrics"]["best"])
        return result

    def add_encoder(self, folder: Path, metrics: dict[str, Any] | None = None) -> str:
        """Record a weight-encoder checkpoint folder in the registry, load it and re-embed; its version."""
        from encoders.weight.model import checkpoint_version

        version = checkpoint_version(folder)
        self.registry.record_encoder("weights", version.split(":")[1], version, folder, metrics or {})
        self.weight_embedder.reload()
        self.registry.sync_indexes()
        return version
