"""Blobs behind an fsspec URL (``LORADEX_BLOBS_URL``: ``s3://bucket/loradex``, ``gcs://…``,
``file:///mnt/shared/blobs``, ``memory://…``), read through a local cache.

Layout: the files of a blob under ``<url>/<sha[:2]>/<sha>/<original file names>``, and beside that
folder its completion marker ``<url>/<sha[:2]>/<sha>.complete``: a JSON manifest (the sha256 and
each file's name and size, in hashing order) written after every file is uploaded.

Why a marker and not a staging prefix moved into place: an object store has no folder rename. A
"move" there is a copy and a delete per object, so a crash midway leaves part of a blob under its
final name, and a reader could see that part. One object PUT, by contrast, is atomic and (S3,
GCS, Azure) strongly consistent: the marker either exists with its whole manifest or does not. So
a blob exists exactly when its marker does (and parses, and names its own sha256); files without
a marker are an unfinished write, invisible to ``exists``, ``listing`` and ``path``, and ``fsck``
reports them (``orphan_temps``) and deletes them once they are older than its age threshold.
Removal deletes the marker first, so a blob disappears at once and its files follow.

Reads go through a local cache, ``<cache>/<sha[:2]>/<sha>/``, so that callers which need a local
folder (readers, export, try it) keep working: a blob is downloaded into a ``.tmp-`` folder, its
bytes are checked against its sha256 (a mismatch is a ``BlobIntegrityError``; nothing is cached),
and the folder is renamed into place. A cache folder therefore exists only complete and verified,
and since a name is the hash of the content, a cached blob never goes stale: a blob removed and
later stored again has the same bytes. Writes check the bytes against the sha256 too, then upload
them and keep the staged copy as the cache entry.

A mounted shared file system is better served by ``registry.storage.BlobStore`` on the mount
(``LORADEX_BLOB_DIR``): it fsyncs and renames, where fsspec's ``file://`` writes without fsync, so
after a power loss (not a process crash) a marker could outlive its files' bytes; the check on read
then refuses the blob (``BlobIntegrityError``) rather than serving it.

Locks (``lock``) serialize writers and removers of one content address. On PostgreSQL the registry
makes them advisory locks in the database (``registry.db.advisory_lock``), which hold across
machines whatever their cache folders; otherwise they are ``flock`` files in ``<cache>/.locks``,
which hold only among the processes sharing that cache folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from registry.errors import BlobIntegrityError, StorageError
from registry.storage import LockFactory, check_name, flock, local_temps, sha256_files, stage_folder

MARKER = ".complete"


class FsspecBlobStore:
    """Blobs under an fsspec URL, with a local read-through cache folder ``cache``."""

    def __init__(self, url: str, *, cache: Path, **storage_options: Any) -> None:
        try:
            from fsspec.core import url_to_fs

            self.fs, base = url_to_fs(url, **storage_options)
        except (ImportError, ValueError) as e:
            raise StorageError(f"blob store URL {url!r}: {e}") from e
        self.url = url
        self.base = str(base).rstrip("/")
        self.root = Path(cache)
        self.locks: LockFactory | None = None  # lock's provider (PostgreSQL: advisory locks); None: flock

    def __repr__(self) -> str:
        return f"FsspecBlobStore({self.url!r}, cache={str(self.root)!r})"

    # -- names ---------------------------------------------------------------------------
    def path(self, sha256: str) -> Path:
        """The blob's local folder: the cached copy, fetched (and verified) when not cached yet.
        A blob that is not stored gives a folder that does not exist, as ``BlobStore`` does."""
        final = self._cached(sha256)
        if not final.is_dir():
            manifest = self._manifest(sha256)
            if manifest is not None:
                self._fetch(sha256, manifest)
        return final

    def _cached(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _folder(self, sha256: str) -> str:
        return f"{self.base}/{sha256[:2]}/{sha256}"

    def _marker(self, sha256: str) -> str:
        return f"{self._folder(sha256)}{MARKER}"

    def _manifest(self, sha256: str) -> list[tuple[str, int]] | None:
        """(name, size) of each file, in hashing order, from the blob's marker; None: no blob."""
        try:
            raw = self.fs.cat_file(self._marker(sha256))
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(raw)
            files = [(str(n), int(s)) for n, s in doc["files"]]
        except (ValueError, KeyError, TypeError):
            return None  # a torn marker (a file system without atomic writes): not complete
        return files if doc.get("sha256") == sha256 else None

    # -- reads ---------------------------------------------------------------------------
    def exists(self, sha256: str) -> bool:
        return self._manifest(sha256) is not None

    def missing(self, sha256: str, names: list[str]) -> list[str]:
        """Which of ``names`` are not files of the stored blob (all of them when it is not stored)."""
        if self._manifest(sha256) is None:
            return list(names)
        try:
            present = {p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self._folder(sha256), detail=False)}
        except FileNotFoundError:
            present = set()
        return [n for n in names if n not in present]

    def listing(self) -> list[str]:
        """Every sha256 stored: those with a marker (unfinished writes are not blobs)."""
        return sorted(self._scan()[0])

    def _scan(self) -> tuple[set[str], dict[str, str]]:
        """(sha256s with a marker, sha256 → folder of every blob folder)."""
        marked: set[str] = set()
        folders: dict[str, str] = {}
        try:
            fans = self.fs.ls(self.base, detail=True)
        except FileNotFoundError:
            return marked, folders
        for fan in fans:
            fan_name = fan["name"].rstrip("/").rsplit("/", 1)[-1]
            if fan["type"] != "directory" or fan_name.startswith("."):
                continue
            for entry in self.fs.ls(fan["name"], detail=True):
                name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
                if entry["type"] == "directory":
                    folders[name] = entry["name"].rstrip("/")
                elif name.endswith(MARKER):
                    marked.add(name[: -len(MARKER)])
        return marked, folders

    def _fetch(self, sha256: str, manifest: list[tuple[str, int]]) -> None:
        """Download the blob into a temporary folder, check its bytes against ``sha256``, and
        rename the folder into the cache."""
        final = self._cached(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{sha256[:12]}-", dir=final.parent))
        try:
            for name, _ in manifest:
                check_name(name)
                try:
                    self.fs.get_file(f"{self._folder(sha256)}/{name}", str(tmp / name))
                except FileNotFoundError:
                    raise StorageError(f"blob {sha256[:12]} at {self.url}: its file {name} is gone") from None
            got = sha256_files([tmp / n for n, _ in manifest])
            if got != sha256:
                raise BlobIntegrityError(f"blob {sha256[:12]} at {self.url}: its files hash to {got[:12]}")
            _rename_into(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    # -- writes --------------------------------------------------------------------------
    def put(self, sha256: str, files: dict[str, Path]) -> Path:
        """Upload ``files`` (name in blob → source path, in hashing order) under ``sha256``; idempotent."""
        return self.put_new(sha256, files)[0]

    def put_new(self, sha256: str, files: dict[str, Path], *, staged: Path | None = None) -> tuple[Path, bool]:
        """``put``, also saying whether this call created the blob (False: its marker was already
        there). ``staged``: a folder from ``stage`` holding these files, uploaded instead of the
        sources and then kept as the cache entry (removed when the blob is already there). On any
        failure the marker is not written, so nothing becomes visible; the files uploaded so far
        are deleted."""
        if self.exists(sha256):
            if staged is not None:
                shutil.rmtree(staged, ignore_errors=True)
            return self._cached(sha256), False
        tmp = staged if staged is not None else self.stage(sha256, files)
        try:
            names = list(files)
            got = sha256_files([tmp / n for n in names])
            if got != sha256:
                raise BlobIntegrityError(
                    f"blob {sha256[:12]}: the files to store hash to {got[:12]} (changed meanwhile?)"
                )
            try:
                self._upload(sha256, tmp, names)
                self._write_marker(sha256, [(n, (tmp / n).stat().st_size) for n in names])
            except BaseException:
                self._drop_unmarked(sha256)
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            _rename_into(tmp, self._cached(sha256))  # the staged copy becomes the cache entry
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # the blob is stored; a read fetches it again
        return self._cached(sha256), True

    def _upload(self, sha256: str, folder: Path, names: list[str]) -> None:
        remote = self._folder(sha256)
        self.fs.makedirs(remote, exist_ok=True)
        for name in names:
            self.fs.put_file(str(folder / name), f"{remote}/{name}")

    def _write_marker(self, sha256: str, manifest: list[tuple[str, int]]) -> None:
        doc = {"sha256": sha256, "files": [[n, s] for n, s in manifest]}
        self.fs.pipe_file(self._marker(sha256), json.dumps(doc).encode())

    def _drop_unmarked(self, sha256: str) -> None:
        """Delete the blob's folder unless its marker exists (an unfinished write)."""
        if self.exists(sha256):
            return
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._folder(sha256), recursive=True)

    def put_batch(self, items: list[tuple[str, dict[str, Path], Path | None]]) -> list[bool]:
        """``put_new`` of each (sha256, files, staged), in order; created per item. Call with every
        item's ``lock`` held: on an error the blobs this call created are removed."""
        created: list[bool] = []
        try:
            for sha256, files, staged in items:
                created.append(self.put_new(sha256, files, staged=staged)[1])
        except BaseException:
            for (sha256, _, _), c in zip(items, created, strict=False):
                if c:
                    self.remove(sha256)
            raise
        return created

    def stage(self, sha256: str, files: dict[str, Path], *, durable: bool = True) -> Path:
        """Copy ``files`` into a new local temporary folder in the cache (fsynced, ``durable`` or
        not: it becomes the cache entry): what ``put_new`` uploads, prepared outside the content
        address's lock."""
        return stage_folder(self._cached(sha256).parent, sha256, files)

    def restore(self, sha256: str, files: dict[str, Path]) -> list[str]:
        """Write back what is gone of a blob from the same content: the whole blob, or the files
        missing from its folder. Returns the names written."""
        if not self.exists(sha256):
            return sorted(files) if self.put_new(sha256, files)[1] else []
        written = []
        for name in self.missing(sha256, sorted(files)):
            check_name(name)
            self.fs.put_file(str(files[name]), f"{self._folder(sha256)}/{name}")
            written.append(name)
        return written

    def remove(self, sha256: str) -> None:
        """Delete the marker (the blob is gone from then on), its files, and the cached copy."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._marker(sha256))
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._folder(sha256), recursive=True)
        shutil.rmtree(self._cached(sha256), ignore_errors=True)

    def lock(self, sha256: str) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock on one content address: ``locks`` when set (the registry sets a
        PostgreSQL advisory lock: it holds across machines), else a ``flock`` file in the cache
        folder (it holds only among the processes sharing that folder)."""
        return self.locks(sha256) if self.locks is not None else flock(self.root / ".locks", sha256)

    # -- fsck ----------------------------------------------------------------------------
    def orphan_temps(self, older_than: float = 3600.0) -> list[str]:
        """Unfinished writes older than ``older_than`` s: blob folders without a marker (as URLs)
        and local temporary folders of the cache (as paths)."""
        import time

        marked, folders = self._scan()
        now = time.time()
        stale = []
        for sha, folder in sorted(folders.items()):
            if sha in marked:
                continue
            age = self._newest(folder)
            if age is not None and now - age > older_than:
                stale.append(self.fs.unstrip_protocol(folder))
        return stale + local_temps(self.root, older_than)

    def drop_temp(self, name: str) -> None:
        """Delete one of ``orphan_temps`` (a blob folder only while it still has no marker)."""
        if "://" not in name:
            shutil.rmtree(name, ignore_errors=True)
            return
        path = self.fs._strip_protocol(name).rstrip("/")
        self._drop_unmarked(path.rsplit("/", 1)[-1])

    def _newest(self, folder: str) -> float | None:
        """When anything in ``folder`` last changed (seconds since the epoch); None: unknown."""
        try:
            paths = self.fs.find(folder) or [folder]
        except FileNotFoundError:
            return None
        times = []
        for p in paths:
            try:
                times.append(self.fs.modified(p).timestamp())
            except (NotImplementedError, OSError, AttributeError):
                info = self.fs.info(p)
                t = next((info[k] for k in ("mtime", "LastModified", "updated", "created") if k in info), None)
                if t is None:
                    return None  # unknown age: never call a possibly live write stale
                times.append(t.timestamp() if hasattr(t, "timestamp") else float(t))
        return max(times)


def _rename_into(tmp: Path, final: Path) -> None:
    """Rename the complete folder ``tmp`` to ``final``; when another process got there first
    (same name, same bytes), drop ``tmp``."""
    try:
        os.rename(tmp, final)
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST) and final.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            return
        raise
