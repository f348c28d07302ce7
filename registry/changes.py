"""The index change log: a monotonically increasing sequence of adds and removes of adapters'
embeddings, written in the same transaction as the row change, so that every replica's FAISS
indexes can follow the database (``registry.replica.catch_up``).

Sequence numbers are handed out in commit order: on PostgreSQL a writer takes a transaction-scoped
advisory lock just before it appends (held until its commit, so a reader that saw ``seq`` n has
seen every committed entry below n; a sequence value alone is assigned at insert, not at commit)
and announces the entry with ``NOTIFY`` on ``CHANNEL``; SQLite has one writer at a time and
``AUTOINCREMENT`` never hands out a number twice, even after pruning.

An entry names what changed, not the vector: a replica reads the current embedding row when it
applies it, so applying is idempotent and replaying any suffix of the log converges on the
database.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from registry.models import IndexChange, IndexChangeState

CHANNEL = "loradex_index_changes"
OPS = ("add", "remove")
_LOCK_KEY = 0x6C6F7261646578  # "loradex": the advisory lock that orders appends on PostgreSQL


@dataclass(frozen=True)
class Change:
    seq: int
    adapter_id: int
    kind: str | None  # None: every kind
    op: str


def record(*, session: Session, adapter_id: int, op: str, kinds: Iterable[str | None] = (None,)) -> int:
    """Append one entry per kind (inside the caller's transaction); the last sequence number."""
    if op not in OPS:
        raise ValueError(f"unknown change op {op!r}; known: {', '.join(OPS)}")
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    now, seq = time.time(), 0
    for kind in kinds:
        row = IndexChange(adapter_id=adapter_id, kind=kind, op=op, created_at=now)
        session.add(row)
        session.flush()
        seq = row.seq
    if postgres:
        session.execute(text("SELECT pg_notify(:c, :s)"), {"c": CHANNEL, "s": str(seq)})
    return seq


def head(*, session: Session) -> int:
    """The newest sequence number (0 for an empty log that was never pruned)."""
    top = session.scalar(select(func.max(IndexChange.seq)))
    return int(top) if top is not None else pruned_through(session=session)


def pruned_through(*, session: Session) -> int:
    value = session.scalar(select(IndexChangeState.pruned_through).where(IndexChangeState.id == 1))
    return int(value or 0)


def read(*, session: Session, after: int, limit: int = 10_000) -> list[Change]:
    """Entries with ``seq > after``, oldest first, at most ``limit``."""
    q = select(IndexChange).where(IndexChange.seq > after).order_by(IndexChange.seq).limit(limit)
    return [Change(int(c.seq), int(c.adapter_id), c.kind, c.op) for c in session.scalars(q)]


def prune(*, session: Session, keep: int) -> int:
    """Delete all but the newest ``keep`` entries and record how far the log now starts; the number
    deleted. A replica that had applied less than that rebuilds instead of reading the log."""
    if keep < 0:
        raise ValueError(f"keep must be >= 0, got {keep}")
    top = head(session=session)
    through = top - keep
    if through <= pruned_through(session=session):
        return 0
    gone = session.execute(delete(IndexChange).where(IndexChange.seq <= through)).rowcount  # type: ignore[attr-defined]
    session.execute(update(IndexChangeState).where(IndexChangeState.id == 1).values(pruned_through=through))
    return int(gone or 0)


__all__ = ["CHANNEL", "Change", "head", "prune", "pruned_through", "read", "record"]
