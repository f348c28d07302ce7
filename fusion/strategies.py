"""Strategy names, listed without loading torch: the runtime compositions ``fusion.compose`` runs
for each kind of base, and ``merge:S`` for every strategy ``fusion.merge`` registers (so a new merge
strategy shows up wherever compositions are offered)."""

from __future__ import annotations

RUNTIME = {"image": ("gate", "linear", "switch", "composite"), "text": ("gate", "linear", "chain")}


def compose_strategies(kind: str | None = None) -> list[str]:
    """The runtime strategies of ``kind`` (image | text; None: of either), then ``merge:S`` for each
    registered merge strategy."""
    from fusion.errors import FusionError
    from fusion.merge import strategies

    if kind is not None and kind not in RUNTIME:
        raise FusionError(f"unknown kind of base {kind!r}; known: {', '.join(RUNTIME)}")
    runtime = RUNTIME[kind] if kind else tuple(dict.fromkeys(RUNTIME["image"] + RUNTIME["text"]))
    return [*runtime, *(f"merge:{s}" for s in strategies())]


__all__ = ["RUNTIME", "compose_strategies"]
