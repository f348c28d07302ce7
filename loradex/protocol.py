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

from loradex.types import Filters, Health, IngestReport, IngestResult, SearchHit, Stats


@runtime_checkable
class Service(Protocol):
    def health(self) -> Health:
        """Status, version, database dialect, adapter count."""
        ...

    def stats(self) -> Stats:
        """Counts by family / format / origin, index sizes, encoders."""
        ...

    def list(self, filters: Filters | None = None, *, limit: int | None = None, offset: int = 0,
             **kw: Any) -> builtins.list[dict[str, Any]]:  # fmt: skip
        """Adapter summaries by id passing ``filters`` (keywords: family, format, origin, tag, tags)."""
        ...

    def get(self, ref: str | int) -> dict[str, Any]:
        """Adapter detail by id or sha256 (prefix); ``AdapterNotFoundError``."""
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

    def search(self, prompt: str, k: int = 10, *, mode: str = "hybrid", filters: Filters | None = None,
               **kw: Any) -> builtins.list[SearchHit]:  # fmt: skip
        """Prompt → top-k hits (mode: hybrid | weights | text); ``SearchError``."""
        ...

    def ingest(
        self,
        paths: Sequence[str | Path],
        *,
        workers: int | None = None,
        progress: Callable[[IngestResult], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Files and folders in; one result per unit, in discovery order, with the caller's paths."""
        ...

    def train_encoder(self, family: str, **kw: Any) -> dict[str, Any]:
        """Train ``family``'s weight encoder on its described adapters; family, version, best metrics."""
        ...


if TYPE_CHECKING:  # pragma: no cover - mypy checks that both faces implement the protocol
    from loradex.client import Client
    from loradex.service import LocalService

    def _faces(local: LocalService, client: Client) -> tuple[Service, Service]:
        return local, client


__all__ = ["Service"]
