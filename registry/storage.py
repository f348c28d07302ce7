"""Content-addressed blob store: ``<root>/<sha[:2]>/<sha>/<original file names>``.

A blob is a folder (a PEFT adapter is two files). Writes go to a temporary folder, each file
is fsynced, then the folder is renamed into place, so a crash never leaves a half blob
under its final name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20


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


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_dir()

    def put(self, sha256: str, files: dict[str, Path]) -> Path:
        """Copy ``files`` (name in blob → source path) under ``sha256``; idempotent."""
        final = self.path(sha256)
        if final.is_dir():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{sha256[:12]}-", dir=final.parent))
        try:
            for name, src in files.items():
                if Path(name).name != name or name in ("", ".", ".."):
                    raise ValueError(f"unsafe blob file name {name!r}")
                dst = tmp / name
                with src.open("rb") as fi, dst.open("wb") as fo:
                    shutil.copyfileobj(fi, fo, CHUNK)
                    fo.flush()
                    os.fsync(fo.fileno())
            _fsync_dir(tmp)
            os.rename(tmp, final)
            _fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if final.is_dir() and not any(final.iterdir()):
                final.rmdir()
            raise
        return final

    def remove(self, sha256: str) -> None:
        p = self.path(sha256)
        if p.is_dir():
            shutil.rmtree(p)
        try:
            p.parent.rmdir()  # drop the empty fan-out folder
        except OSError:
            pass

    def listing(self) -> list[str]:
        """Every sha256 stored (ignores temporary folders)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for d in self.root.iterdir()
            if d.is_dir()
            for p in d.iterdir()
            if p.is_dir() and not p.name.startswith(".tmp-")
        )
