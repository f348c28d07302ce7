"""Every exception loradex raises, in one module, and the stable error codes they map to.

Each is a ``RegistryError`` (the registry's base error), so a surface catches one class. The
REST API answers ``{"error": {"code", "message"}}`` with ``code = error_code(exc)`` and the HTTP
status ``ERROR_CODES[code]``; the client turns codes back into these classes. A new exception
gets its code by one entry in ``EXCEPTION_CODES`` (most specific class first).
"""

from __future__ import annotations

from encoders.weight.registry_training import EncoderTrainingError
from registry.errors import *  # noqa: F403 - one module for every exception: the registry's are re-exported
from registry.errors import (
    AdapterFormatError,
    AdapterNotFoundError,
    DatabaseUnavailableError,
    DuplicateAdapterError,
    ExportError,
    RegistryError,
    StorageError,
    explain,
)
from registry.errors import __all__ as _registry_errors

__all__ = [
    *_registry_errors,
    "ERROR_CODES",
    "EXCEPTION_CODES",
    "AuthError",
    "ClientError",
    "EncoderTrainingError",
    "FamilyLookupError",
    "JobNotFoundError",
    "PreviewUnavailableError",
    "SearchError",
    "UnknownBaseError",
    "error_code",
    "known_cause",
]


class SearchError(RegistryError):
    """A search request that cannot be answered (bad mode, empty prompt …)."""


class FamilyLookupError(RegistryError):
    """Nothing of the kind ``what`` is registered for a family; the message names the families that have one."""

    what = "plug-in"

    def __init__(self, family: str, known: list[str], why: str = "") -> None:
        self.family, self.known = family, known
        have = ", ".join(known) or "none"
        super().__init__(why or f"no {self.what} for family {family!r} (families with one: {have})")


class PreviewUnavailableError(FamilyLookupError):
    """The adapter's family has no registered preview pipeline (or the pipeline folder is gone)."""

    what = "preview pipeline"


class UnknownBaseError(FamilyLookupError):
    """No base pipeline is registered for a family (``loradex.bases``)."""

    what = "base pipeline"


class JobNotFoundError(RegistryError):
    """No job with that id (jobs are kept in memory by the process that ran them)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} (jobs are kept in memory by the server that ran them)")
        self.job_id = job_id


class ClientError(RegistryError):
    """An API error without a registry counterpart: ``status`` (0: no response), ``code``, ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{code} ({status}): {message}" if status else f"{code}: {message}")


class AuthError(ClientError):
    """An admin call without a valid token (``unauthorized``) or on a server without one (``forbidden``)."""


# Stable error codes of the REST API → HTTP status. Clients switch on the code, never on the text.
ERROR_CODES: dict[str, int] = {
    "bad_request": 400,  # malformed or invalid request (bad search mode, unknown export format …)
    "unauthorized": 401,  # admin endpoint without a valid bearer token
    "forbidden": 403,  # admin endpoints disabled (the server has no admin token)
    "not_found": 404,  # no such adapter / job / route
    "no_preview": 404,  # the adapter's family has no preview pipeline (its fingerprint is the picture)
    "method_not_allowed": 405,
    "conflict": 409,  # same content already registered
    "too_large": 413,  # upload over the size limit; zip over the member-count or unpacked-size cap
    "refused": 422,  # unsafe upload (absolute path, '..', symlink, encrypted zip) or unreadable adapter
    "internal": 500,  # a bug: details are in the server log, never in the response
    "unavailable": 503,  # the database cannot be reached (or stays locked): try again later
    "storage": 507,  # the data dir or database cannot be written (read-only, disk full, permissions)
    "interrupted": 503,  # a job whose server stopped before it finished (its message says what was not done)
}

# Exception class → error code, most specific first; any other RegistryError is "bad_request".
EXCEPTION_CODES: list[tuple[type[Exception], str]] = [
    (AdapterNotFoundError, "not_found"),  # (an ambiguous name is a RegistryError: bad_request)
    (JobNotFoundError, "not_found"),
    (PreviewUnavailableError, "no_preview"),
    (DuplicateAdapterError, "conflict"),
    (ExportError, "refused"),
    (AdapterFormatError, "refused"),
    (DatabaseUnavailableError, "unavailable"),
    (StorageError, "storage"),
]


def error_code(e: BaseException) -> str:
    """The stable code of an exception: ``EXCEPTION_CODES``, else ``bad_request`` for request-level
    refusals (``RegistryError``: ``SearchError``, ``EncoderTrainingError`` …), else ``internal``."""
    for cls, code in EXCEPTION_CODES:
        if isinstance(e, cls):
            return code
    return "bad_request" if isinstance(e, RegistryError) else "internal"


def known_cause(e: BaseException, where: object = None) -> RegistryError | None:
    """``e`` itself when it is a loradex refusal, else the one-line ``StorageError`` of a known
    operational cause behind it (read-only data dir, disk full, database locked or down:
    ``registry.errors.explain``), else None: a bug, to be logged with its traceback."""
    return e if isinstance(e, RegistryError) else explain(e, where)
