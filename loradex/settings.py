"""Settings: where the data lives and which bundled adapter sets a fresh data dir starts with.

``Settings.from_env()`` reads ``LORADEX_HOME`` (data dir, default ``~/.loradex``),
``LORADEX_DB_URL`` (default SQLite in the data dir), ``LORADEX_MODE`` (``embedded``, the default, or
``shared``: replicas and workers on one database), ``LORADEX_BLOB_DIR`` (adapter files; default
``<data dir>/blobs``), ``LORADEX_BLOBS_URL`` (an fsspec URL, e.g. ``s3://bucket/loradex``, to keep the
adapter files in instead; ``LORADEX_BLOB_DIR`` is then their local read-through cache, default
``<data dir>/blob-cache``), ``LORADEX_CATCH_UP_INTERVAL`` (shared mode: seconds between change-log polls),
``LORADEX_QUEUE_RETENTION_HOURS`` (shared mode: finished jobs' queue rows are kept this long, default
168), ``LORADEX_TEXT_TUNE`` (``0``: a first ``serve`` keeps the plain text map instead of fine-tuning
the text encoder on the bundled paraphrases afterwards, see ``ui.server.start_text_tune``), ``LORADEX_TEXT_INT8`` (``1``: the int8 text encoder; read by ``LocalService`` itself, see its
``text_int8``), ``LORADEX_ADAPTER_SETS`` (comma-separated
names of the sets to bundle; default every registered set) and ``LORADEX_ADAPTER_DIRS`` (extra
folders, ``os.pathsep``-separated). Base pipelines are configured in ``loradex.bases``.

An adapter set is a named callable returning the folders to ingest: ``register_adapter_set``, or
an entry point in the group ``loradex.adapter_sets`` of an installed distribution (read lazily).
loradex itself declares ``samples`` (``samples/adapters`` of the source tree). A set may also
declare paraphrases of its adapters (``register_adapter_texts``, entry point group
``loradex.adapter_texts``; a callable returning a texts document, adapter name → ``{"texts": [...]}``,
the format of ``train-encoder --texts``): a fresh data dir fits its text map on them after the
bundled ingestion (``ui.server.fit_bundled_text_map``), so requests in other words than the
descriptions find their adapters from the first start.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loradex.plugins import read_entry_points

ADAPTER_SETS_GROUP = "loradex.adapter_sets"
ADAPTER_TEXTS_GROUP = "loradex.adapter_texts"
REPO = Path(__file__).resolve().parents[1]

_SETS: dict[str, Callable[[], list[Path]]] = {}
_TEXTS: dict[str, Callable[[], dict[str, dict[str, Any]]]] = {}


@dataclass
class Settings:
    home: Path | None = None  # data dir (None: $LORADEX_HOME or ~/.loradex)
    db_url: str | None = None  # SQLAlchemy URL (None: $LORADEX_DB_URL or SQLite in the data dir)
    adapter_sets: tuple[str, ...] | None = None  # bundled sets to ingest on a fresh data dir (None: all)
    adapter_dirs: tuple[Path, ...] = field(default=())  # further folders a fresh data dir ingests
    index_type: str = "flat"  # FAISS index type: flat | fp16 | hnsw | ivf | ivf_sq8 (registry.index)
    text_model: str | None = None  # text encoder (None: the bundled MiniLM)
    mode: str = "embedded"  # embedded (one process) | shared (replicas + workers on one database)
    blob_dir: Path | None = None  # adapter files (None: <home>/blobs); shared mode: a folder all share
    blobs_url: str | None = None  # fsspec URL of the adapter files (None: blob_dir); blob_dir is then its cache
    catch_up_interval: float = 0.5  # shared mode: seconds between change-log polls (NOTIFY wakes earlier)
    queue_retention_hours: int = 168  # shared mode: finished jobs' queue rows are deleted after this many hours
    text_tune: bool = True  # a first embedded serve fine-tunes the text encoder on the bundled paraphrases

    def __post_init__(self) -> None:
        from registry.index import INDEX_TYPES

        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"index_type {self.index_type!r}; known: {', '.join(INDEX_TYPES)}")
        if self.mode not in ("embedded", "shared"):
            raise ValueError(f"mode {self.mode!r}; known: embedded, shared")
        if self.queue_retention_hours < 0:
            raise ValueError(f"queue_retention_hours must be >= 0, got {self.queue_retention_hours}")
        if not self.catch_up_interval > 0:
            raise ValueError(f"catch_up_interval must be > 0 seconds, got {self.catch_up_interval}")
        self.blob_dir = Path(self.blob_dir).expanduser() if self.blob_dir else None
        self.home = Path(self.home).expanduser() if self.home else None
        self.adapter_dirs = tuple(Path(p).expanduser() for p in self.adapter_dirs)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from the environment; keyword arguments that are not None win."""
        env_sets = os.environ.get("LORADEX_ADAPTER_SETS")
        env_dirs = os.environ.get("LORADEX_ADAPTER_DIRS", "")
        values: dict[str, object] = {
            "home": os.environ.get("LORADEX_HOME") or None,
            "db_url": os.environ.get("LORADEX_DB_URL") or None,
            "adapter_sets": tuple(s.strip() for s in env_sets.split(",") if s.strip())
            if env_sets is not None
            else None,
            "adapter_dirs": tuple(Path(p) for p in env_dirs.split(os.pathsep) if p.strip()),
            "mode": os.environ.get("LORADEX_MODE") or None,
            "blob_dir": os.environ.get("LORADEX_BLOB_DIR") or None,
            "blobs_url": os.environ.get("LORADEX_BLOBS_URL") or None,
        }
        interval = os.environ.get("LORADEX_CATCH_UP_INTERVAL")
        if interval:
            try:
                values["catch_up_interval"] = float(interval)
            except ValueError:
                raise ValueError(f"LORADEX_CATCH_UP_INTERVAL={interval!r} is not a number of seconds") from None
        retention = os.environ.get("LORADEX_QUEUE_RETENTION_HOURS")
        if retention:
            try:
                values["queue_retention_hours"] = int(retention)
            except ValueError:
                raise ValueError(
                    f"LORADEX_QUEUE_RETENTION_HOURS={retention!r} is not a whole number of hours"
                ) from None
        if os.environ.get("LORADEX_TEXT_TUNE", "").strip():
            values["text_tune"] = env_flag("LORADEX_TEXT_TUNE")
        values.update({k: v for k, v in overrides.items() if v is not None})
        values = {k: v for k, v in values.items() if v is not None}  # unset: the field's default
        return cls(**values)  # type: ignore[arg-type]

    def bundled_adapters(self) -> list[Path]:
        """The folders a fresh data dir ingests: the chosen adapter sets' folders, then ``adapter_dirs``;
        only those that exist, each once."""
        known = adapter_sets()
        chosen = list(known) if self.adapter_sets is None else list(self.adapter_sets)
        missing = [n for n in chosen if n not in known]
        if missing:
            raise ValueError(f"unknown adapter sets {missing}; known: {', '.join(known) or 'none'}")
        dirs = [d for name in chosen for d in known[name]()] + list(self.adapter_dirs)
        return [d for d in dict.fromkeys(dirs) if d.is_dir()]

    def bundled_texts(self) -> dict[str, dict[str, Any]]:
        """Paraphrases the chosen adapter sets declare for their adapters (``register_adapter_texts``),
        one texts document (adapter name or sha256 → ``{"texts": [...]}``); a later set's entry for
        the same key wins. Empty when no chosen set declares any."""
        known = adapter_sets()
        chosen = list(known) if self.adapter_sets is None else list(self.adapter_sets)
        texts = adapter_texts()
        out: dict[str, dict[str, Any]] = {}
        for name in chosen:
            if name in texts:
                out.update(texts[name]())
        return out


def env_flag(name: str) -> bool:
    """An on/off environment variable: ``1``, ``true``, ``yes``, ``on`` (any case) → True; unset, empty,
    ``0``, ``false``, ``no``, ``off`` → False; anything else is refused with the variable's name."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={os.environ[name]!r} is not on/off (use 1 or 0)")


def register_adapter_set(name: str, folders: Callable[[], list[Path]], *, replace: bool = False) -> None:
    """Make ``name`` a bundled adapter set: ``folders()`` lists what to ingest (an unbuilt set returns [])."""
    _read_entry_points()
    if name in _SETS and not replace:
        raise ValueError(f"an adapter set {name!r} is already registered")
    _SETS[name] = folders


def register_adapter_texts(name: str, texts: Callable[[], dict[str, dict[str, Any]]], *, replace: bool = False) -> None:
    """Paraphrases for the adapters of the set ``name``: ``texts()`` returns a texts document (an
    unbuilt set returns {}); a fresh data dir fits its text map on them."""
    _read_text_entry_points()
    if name in _TEXTS and not replace:
        raise ValueError(f"adapter texts for {name!r} are already registered")
    _TEXTS[name] = texts


def adapter_texts() -> dict[str, Callable[[], dict[str, dict[str, Any]]]]:
    """set name → its texts callable."""
    _read_text_entry_points()
    return dict(_TEXTS)


def _read_text_entry_points() -> None:
    read_entry_points(ADAPTER_TEXTS_GROUP, _TEXTS.setdefault)


def adapter_sets() -> dict[str, Callable[[], list[Path]]]:
    """name → folders callable: ``samples`` first, then the others in registration order."""
    _read_entry_points()
    return dict(sorted(_SETS.items(), key=lambda kv: kv[0] != "samples"))


def sample_adapters() -> list[Path]:
    """The sample adapters of the source tree (a few real formats and families)."""
    return [REPO / "samples" / "adapters"]


def _read_entry_points() -> None:
    read_entry_points(ADAPTER_SETS_GROUP, _SETS.setdefault)


__all__ = [
    "Settings",
    "adapter_sets",
    "adapter_texts",
    "env_flag",
    "register_adapter_set",
    "register_adapter_texts",
    "sample_adapters",
]
