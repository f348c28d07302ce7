"""Exception hierarchy of ``fusion`` (a branch of ``registry.errors.RegistryError``)."""

from __future__ import annotations

from registry.errors import RegistryError


class FusionError(RegistryError):
    """Base class of every error raised by ``fusion``."""


class UnknownStrategyError(FusionError, KeyError):
    """A merge or composition strategy name that is not registered."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown {kind} strategy {name!r}; known: {', '.join(sorted(known))}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class IncompatibleAdaptersError(FusionError):
    """Adapters that cannot be merged or installed together; the message names them and why."""


class InstallError(FusionError):
    """Adapters whose modules do not match the model they are installed into."""


class GateError(FusionError):
    """A gate checkpoint or configuration that cannot be used."""
