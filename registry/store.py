"""``Registry``: database + blob store behind one object (what the CLI and services use)."""

from __future__ import annotations

import builtins
import contextlib
import functools
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from registry import changes, crud
from registry.db import default_home, default_url, is_initialized, make_engine, session_factory, transaction, upgrade
from registry.errors import (
    AdapterFormatError,
    AdapterNotFoundError,
    InvalidQueryError,
    NameTakenError,
    RegistryError,
)
from registry.filters import Filters
from registry.index import VectorIndex, bytes_to_vector, vector_to_bytes
from registry.ingest import IngestReport, IngestResult, Prepared, Unit, discover, prepare
from registry.models import Adapter, AdapterEmbedding, BaseFamily
from registry.storage import BlobStorage, open_blob_store
from registry.swap import SwapLock

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from sqlalchemy.orm import Session

Progress = Callable[[IngestResult], None]


class Embedder(Protocol):
    """Makes one vector kind (``text``, ``weights``) for an adapter; injected by the service layer.

    An embedder may also have ``embed_many(infos, loads) -> list[vector | None]``: ``embed`` of each,
    computed together (``Registry.ingest`` uses it for a group); it must give the same vectors."""

    kind: str

    @property
    def version(self) -> str:
        """Names the encoder (set) that made the vectors; a change re-embeds on the next sync."""
        ...

    def embed(self, info: dict[str, Any], load: Callable[[], Any]) -> np.ndarray | None:
        """A normalized (dim,) vector from the row info and/or the loaded ``LoraAdapter``, or None."""
        ...


class Registry:
    """A registry rooted at ``home`` (blobs, SQLite db by default) with database ``db_url``."""

    def __init__(
        self,
        home: str | Path | None = None,
        db_url: str | None = None,
        *,
        embedders: builtins.list[Embedder] = (),  # type: ignore[assignment]
        index_type: str = "flat",
        blob_dir: str | Path | None = None,
        blobs_url: str | None = None,
    ) -> None:
        self.home = Path(home).expanduser() if home else default_home()
        self.db_url = db_url or default_url(self.home)
        self.engine = make_engine(self.db_url)
        self.sessions = session_factory(self.engine)
        self.swap = SwapLock()  # searches read under it; a new encoder version is swapped in under it
        # blobs: under the data dir, or a folder every replica shares (shared mode: a shared filesystem),
        # or behind an fsspec URL (``blobs_url``) with ``blob_dir`` (default <home>/blob-cache) as its cache
        local = Path(blob_dir).expanduser() if blob_dir else self.home / ("blob-cache" if blobs_url else "blobs")
        self.blobs: BlobStorage = open_blob_store(local, blobs_url)
        if self.engine.dialect.name == "postgresql":
            # Replicas and workers on several machines share the database but not always a folder
            # for flock files (an fsspec store's cache is per machine): lock content addresses there.
            self.blobs.locks = functools.partial(_blob_lock, self.engine)
        self.embedders = {e.kind: e for e in embedders}
        self.indexes = {k: VectorIndex(self.home / "index", k, index_type) for k in self.embedders}
        self.applied_seq: int | None = None  # the change log entry the indexes reflect (``registry.replica``)
        self.seen_checkpoints: dict[str, Any] | None = None  # recorded checkpoints per kind at the last catch-up
        self._unsaved: set[str] = set()  # index kinds changed in memory since their last save (batch ingest)

    # -- lifecycle -----------------------------------------------------------------------
    def init(self) -> None:
        """Create the data dir and upgrade the database to the newest migration."""
        self.home.mkdir(parents=True, exist_ok=True)
        upgrade(self.engine)
        self.sync_indexes()
        self.prune_changes()

    def sync_indexes(self) -> dict[str, bool]:
        """Embed adapters that lack a current embedding, then check each index against the
        database, rebuilding any that is missing or stale. Returns kind → rebuilt."""
        rebuilt = {}
        with self.sessions() as s:
            seq = changes.head(session=s)  # read first: what changes during the sync is applied again
        for kind, index in self.indexes.items():
            self.embed_missing(kind)
            with self.sessions() as s:
                rebuilt[kind] = index.sync(s, self.embedders[kind].version)
        self.applied_seq = seq
        return rebuilt

    def catch_up(self, **kw: Any) -> Any:
        """Apply the change log to the indexes (``registry.replica.catch_up``): what other processes
        on this database added and removed since the last call."""
        from registry.replica import catch_up

        return catch_up(self, **kw)

    def prune_changes(self, keep: int = 100_000) -> int:
        """Drop all but the newest ``keep`` change log entries; replicas further behind rebuild."""
        with transaction(self.sessions) as s:
            return changes.prune(session=s, keep=keep)

    def embed_missing(self, kind: str) -> int:
        """(Re-)embed every adapter with no ``kind`` embedding of the current encoder version.

        Several replicas opening at once after an encoder changed would all do it and write the same
        rows at once (two inserts of one row: the later fails, and its replica with it). One does:
        ``registry.db.exclusive`` (a PostgreSQL advisory lock, a flock file beside a SQLite
        database) is held throughout, and the others, waiting on it, then find nothing left. A write
        also leaves alone a row that is of the current version by the time it runs."""
        from registry.db import exclusive

        with exclusive(self.engine, f"embed-{kind}"):
            return self._embed_missing(kind)

    def _embed_missing(self, kind: str) -> int:
        emb = self.embedders[kind]
        with self.sessions() as s:
            rows = s.execute(
                select(AdapterEmbedding.adapter_id, AdapterEmbedding.encoder_version).where(
                    AdapterEmbedding.kind == kind
                )
            )
            stored = {i: v for i, v in rows}  # adapter id → version of its stored vector
            todo = [a for a in crud.list_adapters(session=s) if stored.get(a.id) != emb.version]
            infos = [adapter_detail(a) for a in todo]
        done = 0
        for info in infos:
            vec = emb.embed(info, functools.partial(self.load, info["id"]))
            if vec is None and info["id"] not in stored:
                continue  # nothing stored and nothing to store (e.g. no encoder for its family): no write
            with transaction(self.sessions) as s:
                old = s.get(AdapterEmbedding, (info["id"], kind))
                if old is not None and old.encoder_version == emb.version:
                    continue  # another process embedded it meanwhile
                if old is not None:
                    s.delete(old)
                    s.flush()
                if vec is not None:
                    s.add(_embedding_row(info["id"], kind, emb.version, vec))
                    done += 1
                changes.record(session=s, adapter_id=info["id"], op="add" if vec is not None else "remove",
                               kinds=[kind])  # fmt: skip
        return done

    @property
    def initialized(self) -> bool:
        return is_initialized(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- ingestion -----------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | Path],
        *,
        workers: int | None = None,
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
        origin: str = "ingested",
        lineage: builtins.list[dict[str, Any]] | None = None,
    ) -> IngestReport:
        """Parse in parallel, then commit the adapters parsed so far together (``registry.group_commit``:
        one transaction and one blob-folder fsync per group, texts embedded together); each result is
        reported once durable. ``origin`` is stored on each new row (ingested | generated | merged …);
        ``lineage`` entries ``{"parent": id, "weight": float, "method": str}`` are written in the same
        transaction as the new row."""
        edges = self._check_lineage(lineage or [])
        units = discover([Path(p) for p in paths])
        if on_total:
            on_total(len(units))
        report = IngestReport()
        n = workers or min(len(units), os.cpu_count() or 1) or 1
        # Torch on one intra-op thread in the parsing threads (pool initializer) and in this one
        # (embedding): see ``one_torch_thread_here``; this thread's setting is restored at the end.
        from registry.formats.safe_io import one_torch_thread, one_torch_thread_here
        from registry.group_commit import commit_group, take_group

        # The parsing threads also copy each new file beside the blob store (``BlobStore.stage``):
        # this thread then only renames it into place under the content address's lock.
        prep = functools.partial(_safe_prepare, blobs=self.blobs)
        with one_torch_thread(), ThreadPoolExecutor(max_workers=n, initializer=one_torch_thread_here) as pool:
            futures: builtins.list[Future[Prepared | RegistryError] | None] = [pool.submit(prep, u) for u in units]

            def emit(result: IngestResult) -> None:
                report.results.append(result)
                if progress:
                    progress(result)

            try:
                i = 0
                while i < len(units):
                    # taken futures are dropped: a committed group's tensors are not kept to the end
                    group = take_group(futures, i)
                    n_group = len(group)
                    commit_group(self, units[i : i + n_group], group, origin, edges, emit)
                    i += n_group
            finally:
                # Indexes are written once per batch, not per adapter; a crash before this leaves
                # them behind the database, which ``sync_indexes`` notices (digest) and rebuilds.
                self._save_indexes()
                pool.shutdown(wait=True, cancel_futures=True)
                for left in futures:  # staged copies of units never committed (an error stopped the batch)
                    if left is not None and not left.cancelled() and left.exception() is None:
                        done = left.result()
                        if isinstance(done, Prepared):
                            done.discard_staged()
        return report

    def _save_indexes(self) -> None:
        for kind in sorted(self._unsaved):
            self.indexes[kind].save()
            self._unsaved.discard(kind)

    def _check_lineage(self, lineage: builtins.list[dict[str, Any]]) -> builtins.list[tuple[int, float, str]]:
        """(parent id, weight, method) of each entry; the parents must exist."""
        edges = []
        for entry in lineage:
            unknown = sorted(set(entry) - {"parent", "weight", "method"})
            if unknown or "parent" not in entry:
                raise RegistryError(f"lineage entry {entry!r}: keys are parent, weight, method")
            parent = self.get(entry["parent"])["id"]
            edges.append((int(parent), float(entry.get("weight", 1.0)), str(entry.get("method", "unknown"))))
        return edges

    def _commit(
        self, prep: Prepared, origin: str = "ingested", edges: Sequence[tuple[int, float, str]] = (), *,
        save_index: bool = True,
    ) -> IngestResult:  # fmt: skip
        try:
            with self.swap.reading():  # its vectors and the index they go to are of one encoder version
                return self._commit_prepared(prep, origin, edges, save_index=save_index)
        finally:
            prep.discard_staged()  # not renamed into place (duplicate, refused row, error): not needed

    def _commit_prepared(
        self, prep: Prepared, origin: str, edges: Sequence[tuple[int, float, str]], *, save_index: bool
    ) -> IngestResult:
        a = prep.adapter
        path = prep.source.display
        with transaction(self.sessions) as s:
            existing = crud.get_by_sha(session=s, sha256=prep.sha256)
            if existing is not None:
                reason = f"same sha256 as adapter {existing.id} ({existing.name})"
                files = {p.name: p for p in prep.source.files}
                if self.blobs.missing(prep.sha256, sorted(files)):  # lost blob (see fsck): same bytes restore it
                    with self.blobs.lock(prep.sha256):
                        restored = self.blobs.restore(prep.sha256, files)
                    if restored:
                        reason += f"; its missing stored file(s) {', '.join(restored)} were restored from this file"
                return IngestResult(path, "duplicate", existing.id, existing.name, existing.family, existing.format,
                                    reason=reason)  # fmt: skip
        info = {**prep.row_fields(), "tags": list(a.tags)}
        vecs = {k: e.embed(info, lambda: a) for k, e in self.embedders.items()}
        with self.blobs.lock(prep.sha256):
            # Under the content address's lock: a concurrent remover of the same content cannot
            # delete the blob between our write and our row, and only a blob this call created
            # is removed when the row cannot be written.
            staged, prep.staged = prep.staged, None  # put_new renames it into place or removes it
            _, created_blob = self.blobs.put_new(prep.sha256, {p.name: p for p in prep.source.files}, staged=staged)
            result = self._write_row_retrying(prep, path, origin, edges, vecs, created=created_blob)
        if result.status == "ingested":
            self._index_added(result.adapter_id, vecs, save=save_index)  # type: ignore[arg-type]
        return result

    def _write_row_retrying(self, prep: Prepared, path: str, origin: str, edges: Sequence[tuple[int, float, str]],
                            vecs: dict[str, Any], *, created: bool) -> IngestResult:  # fmt: skip
        """``_write_row`` (blob in place, its lock held), again after a lost race; on failure the
        blob is removed when ``created`` (this call's) and no row references it."""
        for attempt in range(3):
            try:
                return self._write_row(prep, path, origin, edges, vecs)
            except IntegrityError:
                # Another writer won a race: the same content (its row is the answer), the same
                # made adapter's name (the caller names it again), or a family or tag row both
                # created at once (now there: write ours again).
                with transaction(self.sessions) as s:
                    existing = crud.get_by_sha(session=s, sha256=prep.sha256)
                    named = (
                        None
                        if origin == "ingested"
                        else crud.get_made_by_name(session=s, name=prep.row_fields()["name"])
                    )
                    named_id = None if named is None else named.id
                if existing is not None:
                    return IngestResult(path, "duplicate", existing.id, existing.name,
                                        reason=f"same sha256 as adapter {existing.id}")  # fmt: skip
                if named_id is not None or attempt == 2:
                    if created:
                        self._remove_unreferenced_blob(prep.sha256)
                    if named_id is not None:
                        raise NameTakenError(prep.row_fields()["name"], named_id) from None
                    raise
            except BaseException:
                if created:
                    self._remove_unreferenced_blob(prep.sha256)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_row(self, prep: Prepared, path: str, origin: str, edges: Sequence[tuple[int, float, str]],
                   vecs: dict[str, Any]) -> IngestResult:  # fmt: skip
        """The adapter's row, tags, family, lineage and embeddings in one transaction."""
        with transaction(self.sessions) as s:
            return self._add_row(s, prep, path, origin, edges, vecs)

    def _add_row(self, s: Session, prep: Prepared, path: str, origin: str, edges: Sequence[tuple[int, float, str]],
                 vecs: dict[str, Any]) -> IngestResult:  # fmt: skip
        """The adapter's row, tags, family, lineage and embeddings, in the caller's transaction ``s``."""
        from registry.formats.detect import FAMILIES

        a = prep.adapter
        kind, label = _family_info(FAMILIES, a.family)
        crud.ensure_family(session=s, family_id=a.family, kind=kind, label=label)
        row = crud.create_adapter(session=s, origin=origin, tags=a.tags, **prep.row_fields())
        for parent, weight, method in edges:
            crud.add_lineage(session=s, child_id=row.id, parent_id=parent, weight=weight, method=method)
        kinds = [k for k, vec in vecs.items() if vec is not None]
        for k in kinds:
            s.add(_embedding_row(row.id, k, self.embedders[k].version, vecs[k]))  # type: ignore[arg-type]
        if kinds:
            changes.record(session=s, adapter_id=row.id, op="add", kinds=kinds)
        return IngestResult(path, "ingested", row.id, row.name, row.family, row.format, warnings=list(a.warnings))

    def _index_added(self, adapter_id: int, vecs: dict[str, np.ndarray | None], *, save: bool = True) -> None:
        import numpy as np

        for kind, vec in vecs.items():
            if vec is not None:
                index = self.indexes[kind]
                index.add([adapter_id], np.asarray(vec, dtype=np.float32)[None, :], self.embedders[kind].version)
                if save:
                    index.save()
                else:
                    self._unsaved.add(kind)

    # -- encoder checkpoints ----------------------------------------------------------------
    def record_encoder(self, kind: str, family: str, version: str, path: Path, metrics: dict[str, Any]) -> None:
        """Record a trained encoder checkpoint: the folder ``path`` goes into the blob store and the
        row references it, so that every replica can read it (``registry.checkpoints``)."""
        from registry import checkpoints

        checkpoints.record(self, kind, family, version, Path(path), metrics)

    def encoders(self, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        """Recorded checkpoints, oldest first; ``path``: a readable local folder (a blob's is fetched
        into the local cache when the store is remote), ``blob``: its sha256 (None: an older row)."""
        from registry import checkpoints

        with self.sessions() as s:
            rows = [(r.id, r.kind, r.family, r.version, r.path, r.metrics, r.created_at)
                    for r in crud.list_encoders(session=s, kind=kind)]  # fmt: skip
        return [
            {"id": i, "kind": k, "family": f, "version": v, "path": str(checkpoints.folder(self, p)),
             "blob": checkpoints.blob_of(p), "metrics": m, "created_at": c}
            for i, k, f, v, p, m, c in rows
        ]  # fmt: skip

    # -- queries -------------------------------------------------------------------------
    def list(
        self, filters: Filters | None = None, *, limit: int | None = None, offset: int = 0, sort: str = "id",
        **kw: Any,
    ) -> builtins.list[dict[str, Any]]:  # fmt: skip
        """Adapter summaries passing ``filters`` (keywords ``family``, ``format``, ``origin``, ``tag``,
        ``tags`` refine it, see ``Filters.of``), ordered by ``sort`` (``crud.SORT_KEYS``, "-" for descending)."""
        f = Filters.of(filters, **kw)
        with self.sessions() as s:
            rows = crud.list_adapters(session=s, filters=f, limit=limit, offset=offset, sort=sort)
            return [adapter_summary(a) for a in rows]

    def facets(self) -> dict[str, builtins.list[str]]:
        """family / format / origin → the values present (what a filter can match)."""
        with self.sessions() as s:
            return crud.facets(session=s)

    def check_filters(self, filters: Filters) -> None:
        """``InvalidQueryError`` naming the valid values when a family, format or origin filter
        matches nothing the registry has (a typo must not look like an empty result)."""
        wanted = {"family": filters.family, "format": filters.format, "origin": filters.origin}
        if not any(wanted.values()):
            return
        have = self.facets()
        for name, value in wanted.items():
            if value and value not in have[name]:
                known = ", ".join(have[name]) or "none yet"
                raise InvalidQueryError(f"unknown {name} {value!r}; the registry has: {known}")

    def get(self, ref: str | int) -> dict[str, Any]:
        with self.sessions() as s:
            row = crud.find_adapter(session=s, ref=ref)
            if row is None:
                raise AdapterNotFoundError(ref)
            out = adapter_detail(row)
        out["missing_files"] = self.blobs.missing(out["sha256"], list(out.get("files") or []))  # said, not hidden
        return out

    def hits(self, ids: builtins.list[int]) -> dict[int, dict[str, Any]]:
        """Summaries plus trigger words of ``ids`` in one query (what a search result shows)."""
        if not ids:
            return {}
        with self.sessions() as s:
            rows = s.scalars(select(Adapter).where(Adapter.id.in_(ids))).all()
            return {a.id: {**adapter_summary(a), "trigger_words": a.trigger_words} for a in rows}

    def copies_of(self, ids: builtins.list[int]) -> dict[int, int]:
        """id → its original, for those of ``ids`` made as a copy of one adapter (a single lineage
        parent of weight 1: a generated adapter that is a registered one's weights as is). One query."""
        if not ids:
            return {}
        from registry.models import Lineage

        edges: dict[int, builtins.list[tuple[int, float]]] = {}
        with self.sessions() as s:
            for child, parent, weight in s.execute(
                select(Lineage.child_id, Lineage.parent_id, Lineage.weight).where(Lineage.child_id.in_(ids))
            ):
                edges.setdefault(int(child), []).append((int(parent), float(weight)))
            single = [c for c, e in edges.items() if len(e) == 1 and e[0][1] == 1.0]
            metas: dict[int, Any] = {}
            if single:
                rows = s.execute(select(Adapter.id, Adapter.meta).where(Adapter.id.in_(single)))
                metas = {int(i): m for i, m in rows}
        return {c: edges[c][0][0] for c in single if _one_expert(metas.get(c))}

    def identity_of(self, adapter_id: int) -> tuple[str, str] | None:
        """(family, sha256) of one adapter (one primary-key query), None when it is gone."""
        with self.sessions() as s:
            row = s.execute(select(Adapter.family, Adapter.sha256).where(Adapter.id == adapter_id)).first()
        return None if row is None else (str(row[0]), str(row[1]))

    def family_kinds(self) -> dict[str, str]:
        """family → its kind (``diffusion``, ``llm``, ``encoder``, ``unknown``), for the families it holds."""
        with self.sessions() as s:
            return {str(i): str(k) for i, k in s.execute(select(BaseFamily.id, BaseFamily.kind))}

    def ids_of_families(self, families: builtins.list[str]) -> dict[str, set[int]]:
        """family → ids of its adapters (one indexed query; no rows are loaded)."""
        out: dict[str, set[int]] = {f: set() for f in families}
        if not families:
            return out
        with self.sessions() as s:
            for i, fam in s.execute(select(Adapter.id, Adapter.family).where(Adapter.family.in_(families))):
                out[fam].add(int(i))
        return out

    def embeddings_of(self, adapter_id: int) -> dict[str, np.ndarray]:
        """kind → the adapter's stored vector (dim,), for the kinds this registry indexes."""
        with self.sessions() as s:
            rows = s.execute(select(AdapterEmbedding.kind, AdapterEmbedding.dim, AdapterEmbedding.vector)
                             .where(AdapterEmbedding.adapter_id == adapter_id)).all()  # fmt: skip
        return {kind: bytes_to_vector(vec, dim) for kind, dim, vec in rows if kind in self.indexes}

    def current_embeddings(self) -> builtins.list[tuple[int, str, np.ndarray]]:
        """(adapter id, kind, vector) of every embedding made by the current encoder of each index."""
        out = []
        with self.sessions() as s:
            for kind, index in sorted(self.indexes.items()):
                q = select(AdapterEmbedding.adapter_id, AdapterEmbedding.dim, AdapterEmbedding.vector).where(
                    AdapterEmbedding.kind == kind, AdapterEmbedding.encoder_version == index.version
                )
                out += [
                    (int(i), kind, bytes_to_vector(vec, dim))
                    for i, dim, vec in s.execute(q.order_by(AdapterEmbedding.adapter_id))
                ]
        return out

    def count(self, filters: Filters | None = None) -> int:
        with self.sessions() as s:
            return crud.count_adapters(session=s, filters=filters)

    def blob_path(self, ref: str | int) -> Path:
        """Path to the stored file (single-file adapters) or folder (PEFT)."""
        info = self.get(ref)
        folder = self.blobs.path(info["sha256"])
        files = info["files"]
        return folder if "adapter_config.json" in files else folder / files[0]

    def load(self, ref: str | int):  # type: ignore[no-untyped-def]
        """The canonical ``LoraAdapter`` of a registered adapter (read back from its blob)."""
        from registry.formats import read_adapter

        return read_adapter(self.blob_path(ref))

    def export(self, ref: str | int, fmt: str, out_dir: str | Path) -> builtins.list[Path]:
        from registry.formats import write_adapter

        return write_adapter(self.load(ref), fmt, out_dir)

    def remove(self, ref: str | int) -> dict[str, Any]:
        """Remove the row, its lineage and tag links, and its blob, together."""
        with transaction(self.sessions) as s:
            row = crud.find_adapter(session=s, ref=ref)
            if row is None:
                raise AdapterNotFoundError(ref)
            info = adapter_summary(row)
            crud.delete_adapter(session=s, adapter=row)
            changes.record(session=s, adapter_id=info["id"], op="remove")
        for index in self.indexes.values():
            index.remove([info["id"]])
            index.save()
        # Indexes this process has not opened (no embedder for their kind): drop the persisted
        # files so that the next sync rebuilds them from the database instead of finding the id.
        folder = self.home / "index"
        for meta in folder.glob("*.json") if folder.is_dir() else []:
            if meta.stem not in self.indexes:
                meta.with_suffix(".faiss").unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
        with self.blobs.lock(info["sha256"]):
            self._remove_unreferenced_blob(info["sha256"])
        return info

    def fsck(self, *, repair: bool = False) -> Any:
        """``registry.fsck.FsckReport``: rows vs blobs vs embeddings vs index entries."""
        from registry.fsck import fsck

        return fsck(self, repair=repair)

    def _remove_unreferenced_blob(self, sha256: str) -> None:
        """Delete a blob unless a row (an adapter's or a checkpoint's) references it (call with
        ``blobs.lock(sha256)`` held)."""
        from registry.checkpoints import is_referenced

        with self.sessions() as s:
            if crud.get_by_sha(session=s, sha256=sha256) is not None or is_referenced(s, sha256):
                return
        self.blobs.remove(sha256)


def _blob_lock(engine: Any, sha256: str) -> contextlib.AbstractContextManager[None]:
    from registry.db import advisory_lock, blob_lock_keys

    return advisory_lock(engine, blob_lock_keys(sha256))


def _embedding_row(adapter_id: int, kind: str, version: str, vec: np.ndarray) -> AdapterEmbedding:
    return AdapterEmbedding(
        adapter_id=adapter_id, kind=kind, encoder_version=version, dim=int(vec.shape[-1]), vector=vector_to_bytes(vec)
    )


def _safe_prepare(unit: Unit, blobs: BlobStorage | None = None) -> Prepared | RegistryError:
    """``prepare``; with ``blobs``, also stage a copy of a file whose content the store lacks (an
    OSError there, e.g. a read-only data dir or a full disk, is the batch's: raised to the caller)."""
    try:
        prep = prepare(unit)
    except RegistryError as e:
        return e
    except Exception as e:  # a reader bug must not take down a whole batch; report it
        return AdapterFormatError(unit.path, f"could not be read ({type(e).__name__}: {e})")
    if blobs is not None and not blobs.exists(prep.sha256):
        # not fsynced here: the group's ``put_batch`` fsyncs all its staged files at once
        prep.staged = blobs.stage(prep.sha256, {p.name: p for p in prep.source.files}, durable=False)
    return prep


def _family_info(families: dict[str, Any], family: str) -> tuple[str, str]:
    info = families.get(family)
    if info is None:
        return "unknown", family
    kind = getattr(info, "kind", None) or (info[0] if isinstance(info, tuple | list) else "unknown")
    label = getattr(info, "label", None) or (info[1] if isinstance(info, tuple | list) else family)
    return str(kind), str(label)


def _one_expert(meta: Any) -> bool:
    """Whether a made adapter's file records one source expert (or records none, as a merge does):
    a generated sum lists every expert in ``loradex.generator``, registered or not."""
    made = (meta or {}).get("loradex.generator") if isinstance(meta, dict) else None
    if not made:
        return True
    try:
        return len(json.loads(made).get("experts") or []) == 1
    except (ValueError, AttributeError):
        return False


# key in the summary / detail dict → column attribute of ``Adapter`` (in output order)
SUMMARY_FIELDS = {"id": "id", "sha256": "sha256", "name": "name", "family": "family", "format": "format",
                  "origin": "origin", "ranks": "ranks", "module_count": "module_count", "param_count": "param_count",
                  "file_size": "file_size", "tags": "tag_names", "description": "description"}  # fmt: skip
DETAIL_FIELDS = {"files": "files", "trigger_words": "trigger_words", "license": "license", "source": "source",
                 "base_model": "base_model", "modules": "modules", "metadata": "meta", "warnings": "warnings"}  # fmt: skip


def adapter_summary(a: Adapter) -> dict[str, Any]:
    out = {key: getattr(a, attr) for key, attr in SUMMARY_FIELDS.items()}
    out["created_at"] = a.created_at.isoformat() if a.created_at else None
    return out


def adapter_detail(a: Adapter) -> dict[str, Any]:
    """The summary, the detail columns, and the lineage: parents and children with weight and method."""
    out = {**adapter_summary(a), **{key: getattr(a, attr) for key, attr in DETAIL_FIELDS.items()}}
    out["parents"] = [{"id": e.parent_id, "weight": e.weight, "method": e.method} for e in a.parents]
    out["children"] = [{"id": e.child_id, "weight": e.weight, "method": e.method} for e in a.children]
    return out
