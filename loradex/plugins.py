"""Entry points of installed distributions, read once per group (``loradex.bases``,
``loradex.adapter_sets``, ``loradex.previews``): how the zoos, and a user's own packages, plug in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

_READ: set[str] = set()
_LOCK = threading.RLock()


def read_entry_points(group: str, add: Callable[[str, Any], object]) -> None:
    """``add(name, loaded object)`` for each entry point of ``group``, on the first call for the group only."""
    with _LOCK:
        if group in _READ:
            return
        _READ.add(group)
        for ep in entry_points(group=group):
            add(ep.name, ep.load())
