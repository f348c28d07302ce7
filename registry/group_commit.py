"""Group commit for ``Registry.ingest``: the adapters parsed by the time the committing thread
gets to them are embedded together and written in one transaction.

Per adapter a durable write is the blob's fan-out folder fsync and a database commit (its own
fsync): ~10 ms each on a plain disk, more than reading a small adapter. A group pays them once:

1. take the next unit's outcome (waiting for it) and every following one already parsed, up to
   ``GROUP_MAX`` (``take_group``); a group never holds two units of the same content;
2. refusals and contents the database has already (duplicates, handled one by one as before)
   are settled; the new ones are embedded together (an embedder's ``embed_many`` when it has
   one: the text encoder's batches give the same vectors, ``TextEncoder._encode_fresh``);
3. under every new content address's lock (taken in sorted order, so two groups never wait on
   each other), the staged copies are renamed into place and their folders fsynced once
   (``BlobStorage.put_batch``), then all rows, tags, embeddings and change log entries are
   written in one transaction; only after its commit is any of them reported (``emit``).

The crash guarantees are the per-adapter ones: nothing is reported before it is durable; a crash
before the commit leaves renamed blobs without rows (orphans, which ``fsck`` lists and removes)
and never a row without its blob. When the transaction fails on a constraint (a concurrent
writer of the same content, family or tag) the group's rows are written one by one, each with
the per-adapter retries. An embedder error at the k-th new adapter commits the k before it,
then raises, as the per-adapter loop did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from registry.db import transaction
from registry.errors import RegistryError
from registry.ingest import IngestResult, Prepared, Unit
from registry.models import Adapter

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Sequence

    import numpy as np

    from registry.store import Registry

GROUP_MAX = 64  # adapters per group: bounds a transaction's length, not the parsed data (already in memory)
Outcome = Prepared | RegistryError


def take_group(futures: list[Future[Outcome] | None], start: int, limit: int = GROUP_MAX) -> list[Outcome]:
    """The outcome of unit ``start`` (waiting for it) and of the following units already parsed, up
    to ``limit`` and before a repeated content; each taken future is dropped from ``futures`` (its
    tensors live only as long as the group). A parsing error (``OSError`` staging a copy) of the
    first unit is raised; one of a later unit ends the group before it."""
    first = futures[start]
    assert first is not None
    outcomes = [first.result()]
    futures[start] = None
    shas = {o.sha256 for o in outcomes if isinstance(o, Prepared)}
    for j in range(start + 1, min(len(futures), start + limit)):
        fut = futures[j]
        if fut is None or not fut.done() or fut.exception() is not None:
            break
        o = fut.result()
        if isinstance(o, Prepared):
            if o.sha256 in shas:
                break
            shas.add(o.sha256)
        outcomes.append(o)
        futures[j] = None
    return outcomes


def commit_group(reg: Registry, units: Sequence[Unit], outcomes: list[Outcome], origin: str, edges: Sequence[tuple[int, float, str]],
                 emit: Callable[[IngestResult], None]) -> None:  # fmt: skip
    """Commit one group (``units`` and their ``outcomes``, in order) and ``emit`` each result in
    order once durable; on an error, emit the results settled before it, then raise it."""
    with reg.swap.reading():  # embedded and indexed with one encoder version: a swap waits for the group
        results, error = _settle(reg, units, outcomes, origin, edges)
    outcomes.clear()  # the parsed tensors are not kept while the results are reported
    for r in results:
        if r is None:
            break
        emit(r)
    if error is not None:
        raise error


def _settle(reg: Registry, units: Sequence[Unit], outcomes: list[Outcome], origin: str,
            edges: Sequence[tuple[int, float, str]]) -> tuple[list[IngestResult | None], BaseException | None]:  # fmt: skip
    results: list[IngestResult | None] = [None] * len(outcomes)
    try:
        prepared = [k for k, o in enumerate(outcomes) if isinstance(o, Prepared)]
        for k, o in enumerate(outcomes):
            if not isinstance(o, Prepared):
                results[k] = IngestResult(str(units[k].path), "refused", reason=str(o))
        shas = [outcomes[k].sha256 for k in prepared]  # type: ignore[union-attr]
        with reg.sessions() as s:
            known = set(s.scalars(select(Adapter.sha256).where(Adapter.sha256.in_(shas)))) if shas else set()
        new = []
        for k in prepared:
            prep = outcomes[k]
            assert isinstance(prep, Prepared)
            if prep.sha256 in known:  # a duplicate (its lost blob files restored): the per-adapter path
                results[k] = reg._commit(prep, origin, edges, save_index=False)
            else:
                new.append(k)
        items = [outcomes[k] for k in new]
        infos = [{**p.row_fields(), "tags": list(p.adapter.tags)} for p in items]  # type: ignore[union-attr]
        vecs, error = _embed(reg, items, infos)  # type: ignore[arg-type]
        written = _write(reg, items[: len(vecs)], vecs, origin, edges)  # type: ignore[arg-type]
        for k, r in zip(new, written, strict=False):
            results[k] = r
        return results, error
    except BaseException as e:  # noqa: BLE001 (reported to the caller after what was settled)
        return results, e
    finally:
        for o in outcomes:
            if isinstance(o, Prepared):
                o.discard_staged()  # not renamed into place (duplicate, error): not needed


def _embed(reg: Registry, items: list[Prepared], infos: list[dict[str, Any]]
           ) -> tuple[list[dict[str, np.ndarray | None]], Exception | None]:  # fmt: skip
    """Each item's vectors (kind → vector or None), for the items before the first embedder
    error, and that error."""
    n = len(items)
    vecs: list[dict[str, np.ndarray | None]] = [{} for _ in items]
    error: Exception | None = None
    for kind, emb in reg.embedders.items():
        loads = [lambda p=p: p.adapter for p in items]
        out: list[np.ndarray | None] = []
        many = getattr(emb, "embed_many", None)
        try:
            if many is not None:
                out = list(many(infos[:n], loads[:n]))
            else:
                for info, load in zip(infos[:n], loads[:n], strict=True):
                    out.append(emb.embed(info, load))
        except Exception as e:  # noqa: BLE001 (the items before it are committed first)
            error, n = e, len(out) if many is None else 0
        for v, got in zip(vecs, out[:n], strict=False):
            v[kind] = got
    return vecs[:n], error


def _write(reg: Registry, items: list[Prepared], vecs: list[dict[str, np.ndarray | None]], origin: str,
           edges: Sequence[tuple[int, float, str]]) -> list[IngestResult]:  # fmt: skip
    """Blobs into place and rows in one transaction, under the content addresses' locks; then the
    vectors into the in-memory indexes (saved once per batch by the caller)."""
    if not items:
        return []
    with blob_locks(reg, (p.sha256 for p in items)):
        # put_batch removes what it created itself when it fails
        created = reg.blobs.put_batch([(p.sha256, {f.name: f for f in p.source.files}, p.staged) for p in items])
        try:
            try:
                with transaction(reg.sessions) as s:
                    results = [reg._add_row(s, p, p.source.display, origin, edges, v)
                               for p, v in zip(items, vecs, strict=True)]  # fmt: skip
            except IntegrityError:  # a concurrent writer: each row on its own, with the usual retries
                results = [reg._write_row_retrying(p, p.source.display, origin, edges, v, created=False)
                           for p, v in zip(items, vecs, strict=True)]  # fmt: skip
        except BaseException:
            for p, c in zip(items, created, strict=True):
                if c:
                    reg._remove_unreferenced_blob(p.sha256)  # keeps any that a committed row references
            raise
    for r, v in zip(results, vecs, strict=True):
        if r.status == "ingested":
            reg._index_added(r.adapter_id, v, save=False)  # type: ignore[arg-type]
    return results


@contextlib.contextmanager
def blob_locks(reg: Registry, shas: Iterable[str]) -> Iterator[None]:
    """The locks of several content addresses at once, in sorted order: on PostgreSQL one connection
    holds all the advisory locks (a group of 64 must not take 64 of the pool's connections)."""
    wanted = sorted(set(shas))
    if reg.blobs.locks is not None and reg.engine.dialect.name == "postgresql":
        from registry.db import advisory_lock, blob_lock_keys

        with advisory_lock(reg.engine, *(blob_lock_keys(s) for s in wanted)):
            yield
        return
    with contextlib.ExitStack() as stack:
        for sha in wanted:
            stack.enter_context(reg.blobs.lock(sha))
        yield
