"""``Filters``: which adapters a list or a search may return, one value passed through every layer
(crud, ``Registry``, the service, the REST API, the client, the CLI) instead of four keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

FILTER_NAMES = ("family", "format", "origin", "tags")


@dataclass(frozen=True)
class Filters:
    family: str | None = None  # base family id (sd1, sdxl, llama, zoo-text …)
    format: str | None = None  # storage format the adapter came in (kohya, diffusers, peft …)
    origin: str | None = None  # ingested | generated | merged …
    tags: tuple[str, ...] = field(default=())  # every one of these tags is required (lower-cased)

    def __post_init__(self) -> None:
        tags = self.tags
        if isinstance(tags, str):
            raise TypeError(f"tags is a list of tag names, got the string {tags!r}")
        clean = tuple(dict.fromkeys(t.strip().lower() for t in tags or () if t and t.strip()))
        object.__setattr__(self, "tags", clean)

    @classmethod
    def of(cls, filters: Filters | None = None, /, *, tag: str | None = None, **kw: Any) -> Filters:
        """``filters`` with keyword overrides (``family``, ``format``, ``origin``, ``tags`` and the
        single ``tag`` of the list endpoints); an unknown keyword is a ``TypeError`` naming the known ones."""
        unknown = sorted(set(kw) - set(FILTER_NAMES))
        if unknown:
            raise TypeError(f"unexpected filters {unknown}; known: {', '.join((*FILTER_NAMES, 'tag'))}")
        base = filters or cls()
        values = {f.name: getattr(base, f.name) for f in fields(cls)}
        values.update({k: v for k, v in kw.items() if v is not None})
        if tag:
            values["tags"] = (*values["tags"], tag)
        return cls(**values)

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in FILTER_NAMES)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: unset filters left out, ``tags`` as a list."""
        out: dict[str, Any] = {n: getattr(self, n) for n in ("family", "format", "origin") if getattr(self, n)}
        if self.tags:
            out["tags"] = list(self.tags)
        return out
