"""``Service``: the methods every face of loradex has, declared once.

``LocalService`` (in process) and ``Client`` (over HTTP) both implement it, and the contract suite
(``tests/loradex/test_client_contract.py``) runs the same assertions over both. A method added to
the service that the client should have is declared here first.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from loradex import types as t


@runtime_checkable
class Service(Protocol):
    def health(self) -> t.Health:
        """Status, version, database dialect, adapter count."""
        ...

    def stats(self) -> t.Stats:
        """Counts by family / format / origin, index sizes, encoders."""
        ...

    def list(self, filters: t.Filters | None = None, *, limit: int | None = None, offset: int = 0, sort: str = "id",
             **kw: Any) -> builtins.list[dict[str, Any]]:  # fmt: skip
        """Adapter summaries passing ``filters`` (keywords: family, format, origin, tag, tags), ordered
        by ``sort``; an unknown family / format / origin or sort key is an ``InvalidQueryError``."""
        ...

    def count(self, filters: t.Filters | None = None, **kw: Any) -> int:
        """How many adapters ``list`` would return without a limit."""
        ...

    def get(self, ref: str | int) -> dict[str, Any]:
        """Adapter detail by id, sha256 (prefix) or exact name; ``AdapterNotFoundError``."""
        ...

    def usage(self, ref: str | int) -> dict[str, str]:
        """export format → a snippet that loads the downloaded adapter (``loradex.usage``)."""
        ...

    def remove(self, ref: str | int) -> dict[str, Any]:
        """Remove row, blob and lineage; the removed summary."""
        ...

    def export(self, ref: str | int, fmt: str, out_dir: str | Path) -> builtins.list[Path]:
        """Write the adapter as ``fmt`` (diffusers | peft | kohya) into ``out_dir``; the files."""
        ...

    def preview(self, ref: str | int) -> bytes:
        """Preview PNG; ``PreviewUnavailableError`` for families without a pipeline."""
        ...

    def search(self, prompt: str, k: int = 10, *, mode: str = "hybrid", filters: t.Filters | None = None,
               examples: Sequence[tuple[str, str]] | None = None, **kw: Any) -> t.SearchResults:  # fmt: skip
        """Prompt → top-k hits (mode: hybrid | weights | text), a list that also says whether
        nothing fits; with ``examples`` the candidates are run and ranked by the examples they
        reproduce; ``SearchError``."""
        ...

    def ingest(
        self,
        paths: Sequence[str | Path],
        *,
        workers: int | None = None,
        progress: Callable[[t.IngestResult], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> t.IngestReport:
        """Files and folders in; one result per unit, in discovery order, with the caller's paths."""
        ...

    def train_encoder(self, family: str, **kw: Any) -> dict[str, Any]:
        """Train ``family``'s weight encoder on its described adapters; family, version, best metrics."""
        ...

    def train_text_map(self, texts: dict[str, Any] | None = None, config: Any = None, *,
                       tune: Any = None) -> dict[str, Any]:  # fmt: skip
        """Fit the registry's text map on its metadata texts and ``texts`` (name or sha256 →
        paraphrases), record it and re-embed the text index; version and metrics. ``tune``: a
        ``TuneConfig`` (or its fields) to fine-tune the text encoder too (None: a linear map only)."""
        ...

    def generators(self) -> dict[str, dict[str, dict[str, Any]]]:
        """family → method → version, source (bundled | trained), metrics."""
        ...

    def generate(self, description: str, *, family: str, method: str | None = None,
                 examples: Sequence[tuple[str, str]] | None = None, seed: int = 0,
                 rank: int | None = None) -> t.GenerateResult:  # fmt: skip
        """A new registered adapter for ``description`` (and examples) from ``family``'s generator."""
        ...

    def merge(self, refs: Sequence[str | int], weights: Sequence[float] | None = None, *, strategy: str = "cat",
              rank: int | None = None, seed: int = 0, name: str | None = None,
              options: dict[str, Any] | None = None) -> t.MergeOutcome:  # fmt: skip
        """Registered adapters merged in weight space into a new registered adapter (``options``: the
        strategy's, e.g. ``density``)."""
        ...

    def compose(self, prompt: str, *, adapters: Sequence[str | int] | None = None, auto: int | None = None,
                strategy: str = "auto", weights: Sequence[float] | None = None,
                inputs: Sequence[str] | None = None, family: str | None = None, seed: int = 0, n_images: int = 1,
                steps: int | None = None, options: dict[str, Any] | None = None) -> t.ComposeResult:  # fmt: skip
        """Adapters composed at run time in the family's base: images, or outputs for ``inputs``
        (``options``: a ``merge:S`` strategy's merge options)."""
        ...

    def try_it(self, ref: str | int, inputs: Sequence[str]) -> dict[str, Any]:
        """The adapter run on your inputs beside the bare base: text rows or a PNG (``kind``)."""
        ...


if TYPE_CHECKING:  # pragma: no cover - mypy checks that both faces implement the protocol
    from loradex.client import Client
    from loradex.service import LocalService

    def _faces(local: LocalService, client: Client) -> tuple[Service, Service]:
        return local, client


__all__ = ["Service"]
