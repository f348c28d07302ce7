"""loradex registry: content-addressed, database-backed store of LoRA adapters.

Importing this package is cheap: no torch, faiss or diffusers (they load on first use).
"""

from registry.errors import (
    AdapterFormatError,
    AdapterNotFoundError,
    DuplicateAdapterError,
    ExportError,
    RegistryError,
    UnsupportedAdapterError,
)
from registry.filters import Filters

__all__ = [
    "AdapterFormatError",
    "AdapterNotFoundError",
    "DuplicateAdapterError",
    "ExportError",
    "Filters",
    "RegistryError",
    "UnsupportedAdapterError",
]
