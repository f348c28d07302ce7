"""Exception hierarchy of the registry package (translated to CLI/HTTP errors at the edge)."""

from __future__ import annotations

__all__ = [
    "AdapterFormatError",
    "AdapterNotFoundError",
    "DuplicateAdapterError",
    "ExportError",
    "RegistryError",
    "UnsupportedAdapterError",
]


class RegistryError(Exception):
    """Base class of every error raised by ``registry``."""


class AdapterFormatError(RegistryError):
    """A file is not a readable adapter: the message names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnsupportedAdapterError(AdapterFormatError):
    """A well-formed file whose adapter type or naming loradex does not handle."""


class AdapterNotFoundError(RegistryError):
    """No adapter with the given id / sha256 exists in the registry."""

    def __init__(self, ref: object) -> None:
        self.ref = ref
        super().__init__(f"no adapter {ref!r} in the registry")


class DuplicateAdapterError(RegistryError):
    """The same content (sha256) is already registered."""

    def __init__(self, sha256: str, existing_id: int, existing_name: str) -> None:
        self.sha256 = sha256
        self.existing_id = existing_id
        self.existing_name = existing_name
        super().__init__(f"duplicate of adapter {existing_id} ({existing_name}), sha256 {sha256[:12]}")


class ExportError(RegistryError):
    """An adapter cannot be written in the requested format."""
