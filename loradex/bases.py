"""Base pipelines per family: the model an adapter of that family plugs into.

Generation, fusion and previews get a family's base here and nowhere else:

    from loradex.bases import load_base
    pipe = load_base("zoo-image")             # what the loader returns: a diffusers pipeline …
    model, tokenizer = load_base("zoo-text")  # … or a (model, tokenizer) pair

A base comes from ``register_base(family, loader, kind=...)`` (a user's own pipelines), or from
an installed distribution's entry point in the group ``loradex.bases`` (name: the family; value: a
``Base`` or a loader callable), read lazily on the first lookup. A loader is ``loader(device)``.
Loaded bases are cached per family and device. Importing this module does not import torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loradex.errors import SearchError, UnknownBaseError
from loradex.plugins import read_entry_points

ENTRY_POINT_GROUP = "loradex.bases"
BASE_KINDS = ("image", "text", "unknown")


@dataclass(frozen=True)
class Base:
    family: str  # registry base family id the pipeline serves (e.g. "zoo-image")
    loader: Callable[..., Any]  # loader(device) -> the pipeline, or (model, tokenizer) for text bases
    kind: str = "unknown"  # image | text | unknown
    folder: Path | None = None  # files it loads from, if any: the base is available only while they exist

    def __post_init__(self) -> None:
        if self.kind not in BASE_KINDS:
            raise ValueError(f"base kind {self.kind!r} for {self.family!r}; known: {', '.join(BASE_KINDS)}")
        if not callable(self.loader):
            raise TypeError(f"the loader of base {self.family!r} is not callable: {self.loader!r}")

    @property
    def available(self) -> bool:
        return self.folder is None or Path(self.folder).exists()


_BASES: dict[str, Base] = {}
_LOADED: dict[tuple[str, str], Any] = {}
_LOCK = threading.RLock()


def register_base(family: str, loader: Callable[..., Any], *, kind: str, folder: Path | None = None,
                  replace: bool = False) -> Base:  # fmt: skip
    """Make ``family``'s base loadable; a second registration of a family is refused unless ``replace``."""
    base = Base(family, loader, kind, folder)
    with _LOCK:
        _read_entry_points()
        if family in _BASES and not replace:
            raise ValueError(f"a base pipeline for {family!r} is already registered")
        _BASES[family] = base
        for key in [k for k in _LOADED if k[0] == family]:
            del _LOADED[key]
    return base


def unregister_base(family: str) -> None:
    with _LOCK:
        _BASES.pop(family, None)
        for key in [k for k in _LOADED if k[0] == family]:
            del _LOADED[key]


def base_families() -> list[str]:
    """Families with an available base pipeline, sorted."""
    with _LOCK:
        _read_entry_points()
        return sorted(f for f, b in _BASES.items() if b.available)


def get_base(family: str) -> Base:
    """The registration of ``family``; ``UnknownBaseError`` names the families that have one."""
    with _LOCK:
        _read_entry_points()
        base = _BASES.get(family)
        if base is None:
            raise UnknownBaseError(family, base_families())
        if not base.available:
            raise UnknownBaseError(
                family, base_families(), f"base pipeline folder {base.folder} of {family!r} is missing"
            )
        return base


def runs_text(family: str) -> bool:
    """Whether ``family`` has an available base that is a language model (text can be run through it)."""
    return family in base_families() and get_base(family).kind == "text"


def load_base(family: str, device: str = "cpu") -> Any:
    """What ``family``'s loader returns, loaded once per family and device."""
    base = get_base(family)
    with _LOCK:
        key = (family, device)
        if key not in _LOADED:
            _LOADED[key] = base.loader(device)
        return _LOADED[key]


def check_inputs(family: str, tokenizer: Any, inputs: Sequence[str]) -> None:
    """``SearchError`` naming the characters of an input that ``family``'s base tokenizer cannot
    encode (a character vocabulary like the text zoo's raises on them; subword tokenizers encode
    anything and pass). Call before running user text through a language-model base."""
    encode = getattr(tokenizer, "encode", None)
    if encode is None:
        return

    def known(text: str) -> bool:
        try:
            encode(text)
        except (ValueError, KeyError):
            return False
        return True

    for x in inputs:
        if not known(x):
            bad = ", ".join(repr(c) for c in dict.fromkeys(x) if not known(c))
            raise SearchError(f"input {x!r} has characters the {family!r} base does not know: {bad}; "
                              "use only characters its tokenizer reads")  # fmt: skip


def _read_entry_points() -> None:
    """Register the bases installed distributions declare (once; an explicit registration wins)."""

    def add(name: str, obj: Any) -> None:
        _BASES.setdefault(name, obj if isinstance(obj, Base) else Base(name, obj))

    read_entry_points(ENTRY_POINT_GROUP, add)


__all__ = ["Base", "base_families", "check_inputs", "get_base", "load_base", "register_base", "unregister_base"]
