"""loradex: the name users import. Heavy parts load lazily."""

from __future__ import annotations

from typing import Any

__all__ = ["Client", "Registry", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Client":
        from loradex.client import Client

        return Client
    if name == "Registry":
        from registry.store import Registry

        return Registry
    raise AttributeError(f"module 'loradex' has no attribute {name!r}")
