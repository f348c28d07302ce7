"""Content-addressed blob stores: ``<root>/<sha[:2]>/<sha>/<original file names>``.

A blob is a folder (a PEFT adapter is two files). ``BlobStorage`` is what the registry needs of
a store; ``open_blob_store`` picks one from the configuration: ``BlobStore`` (a local or shared
directory, the default) or ``registry.storage_fsspec.FsspecBlobStore`` (an fsspec URL: an object
store, a remote or in-memory file system) when ``LORADEX_BLOBS_URL`` is set.

``BlobStore`` writes go to a temporary folder, each file is fsynced, then the folder is renamed
into place, so a crash never leaves a half blob under its final name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

CHUNK = 1 << 20
_LOCKS_GUARD = threading.Lock()
_THREAD_LOCKS: dict[str, threading.Lock] = {}


def sha256_files(files: Iterable[Path]) -> str:
    """sha256 over the files' bytes in order, each preceded by its length (unambiguous)."""
    h = hashlib.sha256()
    for i, p in enumerate(files):
        if i:
            h.update(b"\0" + str(p.stat().st_size).encode() + b"\0")
        with p.open("rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_into_place(tmp: Path, final: Path) -> Path:
    """Rename a finished temporary folder to ``final``; when ``final`` already exists (a folder named
    by its content's hash: the same content), drop the temporary one instead."""
    if final.exists():
        shutil.rmtree(tmp)
    else:
        tmp.rename(final)
    return final


LockFactory = Callable[[str], contextlib.AbstractContextManager[None]]  # sha256 → an exclusive lock


class BlobStorage(Protocol):
    """What the registry needs of a blob store. ``root`` is a local folder (the store itself, or a
    remote store's read-through cache) that also holds ``.locks`` and, in shared mode, ``.uploads``;
    ``path`` is always a local folder with the blob's files (fetched first when the store is remote)."""

    root: Path
    locks: LockFactory | None  # what ``lock`` takes: set by the registry on PostgreSQL; None: a flock file

    def path(self, sha256: str) -> Path: ...
    def exists(self, sha256: str) -> bool: ...
    def put(self, sha256: str, files: dict[str, Path]) -> Path: ...
    def put_new(self, sha256: str, files: dict[str, Path], *, staged: Path | None = None) -> tuple[Path, bool]: ...
    def put_batch(self, items: list[tuple[str, dict[str, Path], Path | None]]) -> list[bool]: ...
    def stage(self, sha256: str, files: dict[str, Path], *, durable: bool = True) -> Path: ...
    def missing(self, sha256: str, names: list[str]) -> list[str]: ...
    def restore(self, sha256: str, files: dict[str, Path]) -> list[str]: ...
    def lock(self, sha256: str) -> contextlib.AbstractContextManager[None]: ...
    def remove(self, sha256: str) -> None: ...
    def orphan_temps(self, older_than: float = 3600.0) -> list[str]: ...
    def drop_temp(self, name: str) -> None: ...
    def listing(self) -> list[str]: ...


def open_blob_store(blob_dir: Path, url: str | None = None) -> BlobStorage:
    """The store the configuration names: ``url`` (an fsspec URL, ``LORADEX_BLOBS_URL``) with
    ``blob_dir`` as its local read-through cache, or else the directory ``blob_dir`` itself."""
    if url:
        from registry.storage_fsspec import FsspecBlobStore

        return FsspecBlobStore(url, cache=blob_dir)
    return BlobStore(blob_dir)


def check_name(name: str) -> None:
    """A blob file name is one plain path component."""
    if Path(name).name != name or name in ("", ".", ".."):
        raise ValueError(f"unsafe blob file name {name!r}")


def stage_folder(parent: Path, sha256: str, files: dict[str, Path], *, durable: bool = True) -> Path:
    """Copy ``files`` into a new ``.tmp-`` folder in ``parent``, each file and the folder fsynced
    (``durable``; else by ``sync_folders`` before the folder is renamed into place)."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{sha256[:12]}-", dir=parent))
    try:
        for name, src in files.items():
            check_name(name)
            with src.open("rb") as fi, (tmp / name).open("wb") as fo:
                shutil.copyfileobj(fi, fo, CHUNK)
                fo.flush()
                if durable:
                    os.fsync(fo.fileno())
        if durable:
            _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder that cannot be opened is skipped, as by ``_fsync_dir``)."""
    if path.is_dir():
        _fsync_dir(path)
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_paths(paths: list[Path], threads: int = 16) -> None:
    """fsync every path (the files first, then the folders), many at once: concurrent fsyncs share
    the file system's journal commits (64 small files: ~5x less time than one after another here)."""
    from concurrent.futures import ThreadPoolExecutor

    files = [p for p in paths if not p.is_dir()]
    folders = [p for p in paths if p.is_dir()]
    for batch in (files, folders):
        if len(batch) <= 1:
            for p in batch:
                _fsync_path(p)
            continue
        with ThreadPoolExecutor(max_workers=min(threads, len(batch))) as pool:
            list(pool.map(_fsync_path, batch))  # raises the first error


def sync_folders(folders: list[Path]) -> None:
    """Make staged folders durable: their files, then the folders themselves."""
    sync_paths([f for d in folders for f in sorted(d.iterdir())] + list(folders))


@contextmanager
def flock(folder: Path, sha256: str) -> Iterator[None]:
    """An exclusive lock named ``sha256`` in ``folder``, across threads and processes."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    # flock is per open file description, so threads of one process also take a plain lock.
    with _LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(sha256, threading.Lock())
    with thread_lock, (folder / sha256).open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def local_temps(root: Path, older_than: float) -> list[str]:
    """``.tmp-`` folders in the fan-out folders of ``root``, older than ``older_than`` s."""
    import time

    if not root.is_dir():
        return []
    now = time.time()
    return sorted(
        str(p)
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".")  # .locks, .uploads (shared-mode staging)
        for p in d.iterdir()
        if p.name.startswith(".tmp-") and now - p.stat().st_mtime > older_than
    )


class BlobStore:
    """Blobs in a local directory, or a shared file system every replica mounts (the default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.locks: LockFactory | None = None  # lock's provider (PostgreSQL: advisory locks); None: flock

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_dir()

    def put(self, sha256: str, files: dict[str, Path]) -> Path:
        """Copy ``files`` (name in blob → source path) under ``sha256``; idempotent."""
        return self.put_new(sha256, files)[0]

    def put_new(self, sha256: str, files: dict[str, Path], *, staged: Path | None = None) -> tuple[Path, bool]:
        """``put``, also saying whether this call created the blob (False: it was already there,
        possibly written a moment ago by a concurrent writer of the same content). Only the
        writer that created a blob may remove it when its own operation fails. ``staged``: a folder
        from ``stage`` holding these files, renamed into place instead of copying them again (and
        removed when the blob is already there)."""
        if staged is not None and not self.path(sha256).is_dir():
            sync_folders([staged])  # staged without fsync (``stage(durable=False)``): durable before the rename
        final, created = self._rename_new(sha256, files, staged)
        if created:
            _fsync_dir(final.parent)
        return final, created

    def put_batch(self, items: list[tuple[str, dict[str, Path], Path | None]]) -> list[bool]:
        """``put_new`` of each (sha256, files, staged), made durable together: the staged files and
        folders fsynced at once (``sync_paths``), then the renames, then each fan-out folder they
        went into, again at once. Returns created per item. Call with every item's ``lock`` held:
        on an error the blobs this call created are removed."""
        created: list[bool] = []
        try:
            sync_folders([st for sha, _, st in items if st is not None and not self.path(sha).is_dir()])
            for sha256, files, staged in items:
                created.append(self._rename_new(sha256, files, staged)[1])
            made = [sha for (sha, _, _), c in zip(items, created, strict=False) if c]
            sync_paths(list(dict.fromkeys(self.path(sha).parent for sha in made)))
        except BaseException:
            for (sha256, _, _), c in zip(items, created, strict=False):
                if c:
                    self.remove(sha256)
            raise
        return created

    def _rename_new(self, sha256: str, files: dict[str, Path], staged: Path | None) -> tuple[Path, bool]:
        """``put_new`` but the fsync of the fan-out folder (the rename is not durable yet)."""
        final = self.path(sha256)
        if final.is_dir():
            if staged is not None:
                shutil.rmtree(staged, ignore_errors=True)
            return final, False
        tmp = staged if staged is not None else self.stage(sha256, files)
        try:
            os.rename(tmp, final)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            # Another writer renamed the same content into place first (ENOTEMPTY / EEXIST):
            # same sha256, same bytes, so its blob is ours too. Never touch it.
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST) and final.is_dir():
                return final, False
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final, True

    def stage(self, sha256: str, files: dict[str, Path], *, durable: bool = True) -> Path:
        """Copy ``files`` into a new temporary folder beside the blob's place, each file and the
        folder fsynced (unless not ``durable``: ``put_new`` / ``put_batch`` fsync it before the
        rename): all of a write but the rename, so that it can run outside the content address's
        lock (``Registry.ingest`` stages in its parsing threads). A crash leaves a ``.tmp-`` folder
        (``orphan_temps``), never a half blob under its final name."""
        return stage_folder(self.path(sha256).parent, sha256, files, durable=durable)

    def missing(self, sha256: str, names: list[str]) -> list[str]:
        """Which of ``names`` are not files of the blob (all of them when the blob is gone)."""
        folder = self.path(sha256)
        return [n for n in names if not (folder / n).is_file()]

    def restore(self, sha256: str, files: dict[str, Path]) -> list[str]:
        """Write back what is gone of a blob from the same content (same sha256, same bytes): the
        whole blob, or the files missing from its folder. Returns the names written."""
        final = self.path(sha256)
        if not final.is_dir():
            return sorted(files) if self.put_new(sha256, files)[1] else []
        written = []
        for name in self.missing(sha256, sorted(files)):
            check_name(name)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=final)
            try:
                with files[name].open("rb") as fi, os.fdopen(fd, "wb") as fo:
                    shutil.copyfileobj(fi, fo, CHUNK)
                    fo.flush()
                    os.fsync(fo.fileno())
                os.replace(tmp, final / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written.append(name)
        if written:
            _fsync_dir(final)
        return written

    def lock(self, sha256: str) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock on one content address, across threads and processes: held while a
        writer stores the blob and commits its row, and while a remover checks that no row
        references the blob and deletes it, so neither can undo the other. ``locks`` when set
        (the registry sets a PostgreSQL advisory lock: it holds across machines), else a ``flock``
        file in ``<root>/.locks`` (it holds among the processes that share this folder)."""
        return self.locks(sha256) if self.locks is not None else flock(self.root / ".locks", sha256)

    def remove(self, sha256: str) -> None:
        p = self.path(sha256)
        if p.is_dir():
            shutil.rmtree(p)
        try:
            p.parent.rmdir()  # drop the empty fan-out folder
        except OSError:
            pass

    def orphan_temps(self, older_than: float = 3600.0) -> list[str]:
        """Temporary folders left by writers that died mid-copy, older than ``older_than`` s."""
        return local_temps(self.root, older_than)

    def drop_temp(self, name: str) -> None:
        """Delete one of ``orphan_temps``."""
        shutil.rmtree(name, ignore_errors=True)

    def listing(self) -> list[str]:
        """Every sha256 stored (ignores temporary folders)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for d in self.root.iterdir()
            if d.is_dir() and not d.name.startswith(".")  # .locks, .uploads (shared-mode staging)
            for p in d.iterdir()
            if p.is_dir() and not p.name.startswith(".tmp-")
        )
