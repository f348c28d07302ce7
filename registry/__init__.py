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

__all__ = [
    "AdapterFormatError",
    "AdapterNotFoundError",
    "DuplicateAdapterError",
    "ExportError",
    "RegistryError",
    "UnsupportedAdapterError",
]
