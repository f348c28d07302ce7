"""Exception hierarchy of the registry package (translated to CLI/HTTP errors at the edge)."""

from __future__ import annotations

__all__ = [
    "AdapterFormatError",
    "AdapterNotFoundError",
    "DuplicateAdapterError",
    "AmbiguousReferenceError",
    "BlobIntegrityError",
    "CheckpointError",
    "ExportError",
    "InvalidQueryError",
    "NameTakenError",
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


class AmbiguousReferenceError(RegistryError):
    """A name (or sha256 prefix) that several adapters answer to: the message lists their ids."""

    def __init__(self, ref: object, ids: list[int]) -> None:
        self.ref, self.ids = ref, ids
        super().__init__(f"{len(ids)} adapters answer to {ref!r} (ids {', '.join(map(str, ids))}): use an id")


class InvalidQueryError(RegistryError):
    """A list or search parameter outside what exists: an unknown filter value or sort key (the
    message lists the valid ones)."""


class DuplicateAdapterError(RegistryError):
    """The same content (sha256) is already registered."""

    def __init__(self, sha256: str, existing_id: int, existing_name: str) -> None:
        self.sha256 = sha256
        self.existing_id = existing_id
        self.existing_name = existing_name
        super().__init__(f"duplicate of adapter {existing_id} ({existing_name}), sha256 {sha256[:12]}")


class NameTakenError(RegistryError):
    """A made (generated, merged) adapter's name is already another made adapter's: two writers
    chose it at once and the other committed first. The caller chooses another name."""

    def __init__(self, name: str, existing_id: int) -> None:
        self.name = name
        self.existing_id = existing_id
        super().__init__(f"the name {name!r} is already adapter {existing_id}'s (made adapters' names are unique)")


class ExportError(RegistryError):
    """An adapter cannot be written in the requested format."""


class CheckpointError(RegistryError):
    """A checkpoint folder that cannot be recorded (missing, empty, with subfolders, unreadable)."""


class StorageError(RegistryError):
    """The data dir or database cannot be written or reached: an operator's problem, not a bug.
    ``explain`` builds one from a low-level exception; the edges show its one line."""


class BlobIntegrityError(StorageError):
    """A stored blob's bytes do not hash to its content address (damaged or replaced in the store)."""


class DatabaseUnavailableError(StorageError):
    """The database server cannot be reached (or a SQLite file stays locked)."""


def explain(exc: BaseException, where: object = None) -> StorageError | None:
    """A one-line ``StorageError`` for a known operational cause (read-only data dir, disk full,
    permission denied, database locked or unreachable), or None for anything else (a bug, to be
    logged with its traceback). Matches on class names so importing this stays cheap."""
    import errno

    place = f" ({where})" if where else ""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        text = str(e).lower()
        if isinstance(e, OSError) and e.errno is not None:
            name = getattr(e, "filename", None) or where
            if e.errno == errno.EROFS:
                return StorageError(f"the data dir is on a read-only file system: cannot write {name}")
            if e.errno == errno.ENOSPC:
                return StorageError(f"no space left on the device: cannot write {name}")
            if e.errno == errno.EDQUOT:
                return StorageError(f"disk quota exceeded: cannot write {name}")
            if e.errno in (errno.EACCES, errno.EPERM):
                return StorageError(f"permission denied: {name}")
        if type(e).__name__ in ("OperationalError", "InterfaceError") or "psycopg" in type(e).__module__:
            if "readonly database" in text or "read-only" in text:
                return StorageError(f"the database is read-only{place}: check the data dir's permissions")
            if "unable to open database file" in text:
                return StorageError(f"cannot open the database file{place}: the data dir is missing or not writable")
            if "database is locked" in text:
                return DatabaseUnavailableError(f"the database is locked by another process{place}; try again")
            if "disk i/o error" in text or "database or disk is full" in text:
                return StorageError(f"the database cannot be written (disk full or I/O error){place}")
            if "connection" in text and ("refused" in text or "failed" in text or "could not" in text):
                return DatabaseUnavailableError(f"the database server cannot be reached{place}")
    return None
