"""loradex: the application package and the name users import. Heavy parts load lazily:
``import loradex`` and ``loradex.Client`` never import torch, faiss or diffusers.

    from loradex import LocalService, Client, Filters
    svc = LocalService.open("~/.loradex")
    hits = svc.search("a soft watercolor painting", k=5, filters=Filters(family="sd1"))
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Client", "Filters", "LocalService", "Registry", "Service", "Settings", "__version__"]
__version__ = "0.1.0"

_LAZY = {
    "Client": "loradex.client",
    "Filters": "loradex.types",
    "LocalService": "loradex.service",
    "Service": "loradex.protocol",
    "Settings": "loradex.settings",
    "Registry": "registry.store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loradex' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
