"""Recorded checkpoints (weight encoders, text maps, generators) live in the blob store.

A checkpoint is a folder of files (``config.json``, ``model.safetensors`` …) written by a training
run under the data dir of the process that ran it. In shared mode every replica and worker has its
own data dir, so a path there means nothing to the others. ``record`` therefore puts the folder's
files into the registry's blob store, content-addressed like an adapter's files (sha256 over the
files in name order, ``registry.storage.sha256_files``), and stores ``blob:<sha256>`` as the row's
``path``; ``folder`` resolves that to a readable local folder through the same store: the shared
folder itself (``BlobStore``), or a copy fetched once into the local cache under the data dir,
checked against its sha256 and renamed into place (``FsspecBlobStore.path``).

Rows recorded before hold the folder's path (relative to the data dir when inside it, else
absolute) and resolve to it as before; recording the same version again points such a row at
the blob.

Crash guarantees, as for adapters: the blob is written (renamed or marked complete) before the row,
under the content address's lock; when the row cannot be written, a blob this call created is
removed again, so no blob is left that nothing references. ``fsck`` counts checkpoint blobs as
referenced and reports the ones that are gone (``missing_checkpoints``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from registry import crud
from registry.db import transaction
from registry.errors import CheckpointError, StorageError
from registry.models import EncoderCheckpoint
from registry.storage import sha256_files

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.orm import Session

    from registry.store import Registry

BLOB = "blob:"  # prefix of a ``path`` that names a blob


def blob_of(stored: str) -> str | None:
    """The sha256 a stored ``path`` names, or None for a plain path (an older row)."""
    return stored[len(BLOB) :] if stored.startswith(BLOB) else None


def folder_files(folder: Path) -> dict[str, Path]:
    """name → path of the checkpoint folder's files, by name; ``CheckpointError`` naming the folder
    when it is missing, unreadable, empty or has subfolders (a blob is one level of files)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a checkpoint folder (no such folder)")
    try:
        entries = sorted(folder.iterdir())
    except OSError as e:
        raise CheckpointError(f"{folder}: cannot read the checkpoint folder ({e})") from e
    nested = [p.name for p in entries if p.is_dir()]
    if nested:
        raise CheckpointError(
            f"{folder}: a checkpoint folder holds files only; it has the folder(s) {', '.join(nested)}"
        )
    files = {p.name: p for p in entries if p.is_file()}
    if not files:
        raise CheckpointError(f"{folder}: the checkpoint folder has no files")
    return files


def record(registry: Registry, kind: str, family: str, version: str, folder: Path, metrics: dict[str, Any]) -> str:
    """Put ``folder`` into the blob store and record it (see the module doc); the row's ``path``.
    Recording a version again points its row at these files (a plain path becomes the blob; a
    checkpoint edited in place, such as a text map's search settings, replaces its earlier files,
    whose blob is removed once nothing references it): the last record wins."""
    folder = Path(folder)
    files = folder_files(folder)
    try:
        sha = sha256_files(list(files.values()))
    except OSError as e:
        raise CheckpointError(f"{folder}: cannot read the checkpoint's files ({e})") from e
    ref = BLOB + sha
    with registry.blobs.lock(sha):
        try:
            _, created = registry.blobs.put_new(sha, files)
            if not created and registry.blobs.missing(sha, sorted(files)):
                registry.blobs.restore(sha, files)  # a lost file of the same content: written back
        except OSError as e:
            raise StorageError(f"{folder}: the checkpoint could not be stored in the blob store ({e})") from e
        try:
            replaced = _write_row(registry, kind, family, version, ref, metrics)
        except BaseException:
            if created:
                registry._remove_unreferenced_blob(sha)
            raise
    old = blob_of(replaced) if replaced else None
    if old is not None and old != sha:  # the version's earlier files, now unreferenced
        with registry.blobs.lock(old):
            registry._remove_unreferenced_blob(old)
    return ref


def _write_row(registry: Registry, kind: str, family: str, version: str, ref: str, metrics: dict[str, Any]) -> str:
    """Point ``version``'s row at ``ref`` (a new row, or a recorded one whose files were others: its
    checkpoint was changed in place, e.g. a text map's search settings, which its version does not
    name; the last record wins); the path the row held before, "" for a new row."""
    for attempt in range(2):
        try:
            with transaction(registry.sessions) as s:
                row = crud.record_encoder(session=s, kind=kind, family=family, version=version, path=ref,
                                          metrics=metrics)  # fmt: skip
                before = "" if row.path == ref else row.path
                row.path = ref
                if metrics and before:
                    row.metrics = metrics
                return before
        except IntegrityError:
            if attempt:  # another process recorded the same version at once: record over its row
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def folder(registry: Registry, stored: str) -> Path:
    """A readable local folder for a stored ``path``: the blob's (fetched into the local cache when
    the store is remote; a blob that is gone gives a folder that does not exist), else the plain
    path, relative to the data dir unless absolute."""
    sha = blob_of(stored)
    if sha is not None:
        return registry.blobs.path(sha)
    return Path(stored) if Path(stored).is_absolute() else registry.home / stored


def referenced(session: Session) -> dict[str, str]:
    """sha256 → version of every checkpoint recorded as a blob."""
    rows = session.execute(select(EncoderCheckpoint.path, EncoderCheckpoint.version)).all()
    return {sha: str(v) for p, v in rows if (sha := blob_of(str(p))) is not None}


def is_referenced(session: Session, sha256: str) -> bool:
    return session.scalar(select(EncoderCheckpoint.id).where(EncoderCheckpoint.path == BLOB + sha256)) is not None
