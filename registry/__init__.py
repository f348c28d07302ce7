"""loradex registry: content-addressed, database-backed store of LoRA adapters.

Importing this package is cheap: no torch, faiss or diffusers (they load on first use).
"""

from registry.errors import *  # noqa: F403 - the package's exceptions at its top
from registry.errors import __all__ as _errors
from registry.filters import Filters

__all__ = [*_errors, "Filters"]
