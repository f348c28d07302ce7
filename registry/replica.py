"""A replica's FAISS indexes follow the database through the change log (``registry.changes``).

``catch_up(registry)`` applies the entries after the last sequence number this registry applied
(``Registry.applied_seq``): for each adapter an entry names, it reads the adapter's current
embedding row of each kind and adds (or replaces) it in the index when it was made by the index's
encoder version, or removes the adapter from the index when there is none. A replica that has
applied nothing yet, that is more than ``max_behind`` entries behind, or whose next entries were
pruned rebuilds every index from the stored embeddings instead. An embedding made by another
encoder version (a weight encoder trained through another replica) reloads this replica's
embedder when it can and rebuilds that index at the new version; vectors of two versions are
never mixed in one index. A recorded checkpoint of an embedder's kind that changed without a new
version (a text map's search settings recorded again: ``registry.checkpoints``) reloads that
embedder too (``CatchUp.reloaded``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select

from registry import changes
from registry.index import bytes_to_vector
from registry.models import AdapterEmbedding, EncoderCheckpoint

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.orm import Session

    from registry.store import Registry

log = logging.getLogger("registry.replica")

MAX_BEHIND = 50_000  # entries; further behind, a rebuild from the stored embeddings is cheaper
BATCH = 5_000  # entries read per query


@dataclass
class CatchUp:
    """What one ``catch_up`` did."""

    seq: int  # the sequence number applied through
    applied: int = 0  # log entries applied
    rebuilt: list[str] = field(default_factory=list)  # kinds rebuilt from the stored embeddings
    reason: str | None = None  # why they were rebuilt
    reloaded: list[str] = field(default_factory=list)  # kinds reloaded: their recorded checkpoints changed


def catch_up(registry: Registry, *, max_behind: int = MAX_BEHIND, batch: int = BATCH, save: bool = True) -> CatchUp:
    """Bring ``registry``'s indexes up to the newest change in the database (see the module doc)."""
    with registry.sessions() as s:
        top = changes.head(session=s)
        horizon = changes.pruned_through(session=s)
        recorded = _checkpoints(s, registry)
    seen = registry.seen_checkpoints  # updated once this catch-up succeeded: a failed reload is tried again
    moved = sorted(k for k in recorded if seen is not None and recorded[k] != seen.get(k))
    last = registry.applied_seq
    reason = None
    if last is None:
        reason = "no change applied yet"
    elif last < horizon:
        reason = f"the change log was pruned through {horizon}, past the {last} applied here"
    elif top - last > max_behind:
        reason = f"{top - last} changes behind (more than {max_behind})"
    if reason is not None:
        rebuild(registry, top)
        registry.seen_checkpoints = recorded
        log.info("rebuilt the indexes at change %d: %s", top, reason)
        return CatchUp(top, rebuilt=sorted(registry.indexes), reason=reason, reloaded=moved)
    assert last is not None
    out = CatchUp(last)
    touched: set[str] = set()
    while out.seq < top:
        with registry.sessions() as s:
            entries = changes.read(session=s, after=out.seq, limit=batch)
        if not entries:
            break
        stale = _apply(registry, entries, touched)
        out.applied += len(entries)
        out.seq = entries[-1].seq
        redone = resync(registry, sorted(stale)) if stale else []
        if redone:
            out.rebuilt += redone
            out.reason = "an embedding of another encoder version"
    if moved:  # reloads the embedder; rebuilds its index only if the version moved with it
        out.reloaded = moved
        out.rebuilt += [k for k in resync(registry, moved) if k not in out.rebuilt]
    registry.applied_seq, registry.seen_checkpoints = out.seq, recorded
    if save:
        for kind in sorted(touched):
            registry.indexes[kind].save()
    return out


def _checkpoints(session: Session, registry: Registry) -> dict[str, tuple[tuple[str, str], ...]]:
    """Embedder kind → its recorded checkpoints as (version, path), oldest first."""
    rows = session.execute(select(EncoderCheckpoint.kind, EncoderCheckpoint.version, EncoderCheckpoint.path)
                           .where(EncoderCheckpoint.kind.in_(sorted(registry.embedders)))
                           .order_by(EncoderCheckpoint.id))  # fmt: skip
    out: dict[str, tuple[tuple[str, str], ...]] = {k: () for k in registry.embedders}
    for kind, version, path in rows:
        out[kind] += ((version, path),)
    return out


def _apply(registry: Registry, entries: list[changes.Change], touched: set[str]) -> set[str]:
    """Apply ``entries`` to the indexes; the kinds whose stored embeddings changed encoder version."""
    import numpy as np

    ids = sorted({c.adapter_id for c in entries})
    current: dict[tuple[int, str], tuple[str, bytes, int]] = {}
    with registry.sessions() as s:
        for part in range(0, len(ids), 1000):
            q = select(AdapterEmbedding.adapter_id, AdapterEmbedding.kind, AdapterEmbedding.encoder_version,
                       AdapterEmbedding.vector, AdapterEmbedding.dim).where(
                AdapterEmbedding.adapter_id.in_(ids[part : part + 1000]))  # fmt: skip
            for i, kind, version, vec, dim in s.execute(q):
                current[(int(i), kind)] = (version, vec, dim)
    stale: set[str] = set()
    for kind, index in registry.indexes.items():
        named = sorted({c.adapter_id for c in entries if c.kind in (None, kind)})
        if not named:
            continue
        version = index.version or registry.embedders[kind].version
        add_ids, add_vecs, gone = [], [], []
        for i in named:
            row = current.get((i, kind))
            if row is None:
                gone.append(i)
            elif row[0] == version:
                add_ids.append(i)
                add_vecs.append(bytes_to_vector(row[1], row[2]))
            else:
                stale.add(kind)
                gone.append(i)  # never served beside vectors of another version
        if gone:
            index.remove(gone)
        if add_ids:
            index.add(add_ids, np.stack(add_vecs), version)  # (n, dim)
        touched.add(kind)
    return stale


def rebuild(registry: Registry, seq: int) -> None:
    """Every index from the stored embeddings of its embedder's version; applied through ``seq``
    (read before the rebuild: later entries are applied again, which changes nothing)."""
    resync(registry, sorted(registry.indexes), force=True)
    registry.applied_seq = seq


def resync(registry: Registry, kinds: list[str], *, force: bool = False) -> list[str]:
    """Reload the embedders of ``kinds`` (their version may have moved on elsewhere) and rebuild
    the indexes whose embedder now has another version than the index (all of them: ``force``).
    An embedding this replica cannot make (its encoder is not here) is left out, not mixed in."""
    done = []
    with registry.swap.writing():  # searches here wait out the reload and rebuild (``registry.swap``)
        for kind in kinds:
            embedder = registry.embedders[kind]
            reload = getattr(embedder, "reload", None)
            if callable(reload):
                reload()
            index = registry.indexes[kind]
            if not force and index.version == embedder.version:
                continue
            index.version = embedder.version
            done.append(kind)
            with registry.sessions() as s:
                index.rebuild(s)
    return done


class Follower:
    """Calls ``catch_up`` every ``interval`` seconds, or as soon as PostgreSQL announces a change
    (``LISTEN`` on ``changes.CHANNEL``), on a daemon thread until ``stop``."""

    def __init__(self, registry: Registry, interval: float = 0.5, *, listen: bool = True,
                 save_every: float = 30.0, prune_every: float = 3600.0) -> None:  # fmt: skip
        import threading

        self.registry, self.interval, self.save_every = registry, interval, save_every
        self.prune_every = prune_every  # seconds between prunes of the log (keeps the newest entries)
        self.listen = listen and registry.engine.dialect.name == "postgresql"
        self.last: CatchUp | None = None
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loradex-follower", daemon=True)

    def start(self) -> Follower:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        conn = None
        saved = pruned = time.monotonic()
        while not self._stop.is_set():
            try:
                if self.listen and conn is None:
                    conn = self._connect()
                save = time.monotonic() - saved >= self.save_every
                self.last = catch_up(self.registry, save=save)
                if save:
                    saved = time.monotonic()
                if time.monotonic() - pruned >= self.prune_every:
                    self.registry.prune_changes()
                    pruned = time.monotonic()
                self._wait(conn)
            except Exception:  # the database may be away for a while: log, back off, go on
                self.errors += 1
                log.exception("catching up with the change log failed")
                if conn is not None:
                    conn.close()
                    conn = None
                self._stop.wait(min(30.0, self.interval * 2 ** min(self.errors, 6)))
        if conn is not None:
            conn.close()

    def _connect(self):  # type: ignore[no-untyped-def]
        import psycopg

        url = self.registry.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = psycopg.connect(url, autocommit=True)
        conn.execute(f"LISTEN {changes.CHANNEL}")
        return conn

    def _wait(self, conn) -> None:  # type: ignore[no-untyped-def]
        if conn is None:
            self._stop.wait(self.interval)
            return
        for _ in conn.notifies(timeout=self.interval, stop_after=1):
            pass


__all__ = ["CatchUp", "Follower", "catch_up", "rebuild", "resync"]
