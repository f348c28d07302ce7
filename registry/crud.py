"""Database operations. Every function takes a keyword-only ``session``; lookups return ``X | None``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.errors import AmbiguousReferenceError, InvalidQueryError
from registry.filters import Filters
from registry.models import Adapter, BaseFamily, EncoderCheckpoint, Lineage, Tag

MAX_ROWS = 2**62  # offsets and limits past this are beyond any table (and past what drivers accept)


def ensure_family(*, session: Session, family_id: str, kind: str = "unknown", label: str | None = None) -> BaseFamily:
    fam = session.get(BaseFamily, family_id)
    if fam is None:
        fam = BaseFamily(id=family_id, kind=kind, label=label or family_id)
        session.add(fam)
        session.flush()
    return fam


def ensure_tags(*, session: Session, names: Sequence[str]) -> list[Tag]:
    tags: list[Tag] = []
    for raw in dict.fromkeys(n.strip().lower()[:100] for n in names if n and n.strip()):
        tag = session.scalar(select(Tag).where(Tag.name == raw))
        if tag is None:
            tag = Tag(name=raw)
            session.add(tag)
            session.flush()
        tags.append(tag)
    return tags


def create_adapter(*, session: Session, tags: Sequence[str] = (), **fields: Any) -> Adapter:
    row = Adapter(**fields)
    row.tags = ensure_tags(session=session, names=tags)
    session.add(row)
    session.flush()
    return row


def add_lineage(*, session: Session, child_id: int, parent_id: int, weight: float, method: str) -> Lineage:
    row = Lineage(child_id=child_id, parent_id=parent_id, weight=weight, method=method)
    session.add(row)
    session.flush()
    return row


def get_made_by_name(*, session: Session, name: str) -> Adapter | None:
    """The made (not ingested) adapter named ``name``: at most one (``uq_adapters_made_name``)."""
    return session.scalar(select(Adapter).where(Adapter.name == name, Adapter.origin != "ingested"))


def get_adapter(*, session: Session, adapter_id: int) -> Adapter | None:
    return session.get(Adapter, adapter_id)


def get_by_sha(*, session: Session, sha256: str) -> Adapter | None:
    return session.scalar(select(Adapter).where(Adapter.sha256 == sha256))


def find_adapter(*, session: Session, ref: str | int) -> Adapter | None:
    """By integer id, full sha256, an unambiguous sha256 prefix (≥ 8 hex chars), or exact name;
    a name (or prefix) several adapters share raises ``AmbiguousReferenceError`` listing their ids."""
    s = str(ref)
    # ASCII digits only: str.isdigit() accepts '１' (fullwidth) and '²', and int() reads them as ids.
    if s.isascii() and s.isdigit() and len(s) < 12:
        return get_adapter(session=session, adapter_id=int(s))
    if len(s) == 64 and (row := get_by_sha(session=session, sha256=s)) is not None:
        return row
    if s.isascii() and len(s) >= 8 and all(c in "0123456789abcdefABCDEF" for c in s):
        rows = session.scalars(select(Adapter).where(Adapter.sha256.startswith(s.lower())).limit(2)).all()
        if len(rows) == 1:
            return rows[0]
    named = session.scalars(select(Adapter).where(Adapter.name == s).order_by(Adapter.id).limit(20)).all()
    if len(named) > 1:
        raise AmbiguousReferenceError(ref, [a.id for a in named])
    return named[0] if named else None


# ``sort`` keys of ``list_adapters`` (a leading "-" sorts descending); ties are broken by id.
SORT_KEYS = {"id": Adapter.id, "name": Adapter.name, "family": Adapter.family, "format": Adapter.format,
             "origin": Adapter.origin, "created": Adapter.created_at, "size": Adapter.file_size,
             "params": Adapter.param_count}  # fmt: skip


def _filtered(q: Any, f: Filters) -> Any:
    if f.family:
        q = q.where(Adapter.family == f.family)
    if f.format:
        q = q.where(Adapter.format == f.format)
    if f.origin:
        q = q.where(Adapter.origin == f.origin)
    for tag in f.tags:
        q = q.where(Adapter.tags.any(Tag.name == tag))
    return q


def list_adapters(
    *, session: Session, filters: Filters | None = None, limit: int | None = None, offset: int = 0, sort: str = "id"
) -> list[Adapter]:
    """Adapters that pass ``filters`` (every tag in ``filters.tags`` required), ordered by ``sort``
    (a ``SORT_KEYS`` key, "-" first for descending)."""
    key = sort[1:] if sort.startswith("-") else sort
    if key not in SORT_KEYS:
        raise InvalidQueryError(f"unknown sort {sort!r}; known: {', '.join(SORT_KEYS)} (prefix '-' for descending)")
    col = SORT_KEYS[key]
    order: list[Any] = [col.desc() if sort.startswith("-") else col.asc()]
    if key != "id":
        order.append(Adapter.id.asc())
    q = _filtered(select(Adapter), filters or Filters()).order_by(*order)
    if offset >= MAX_ROWS or (limit is not None and limit <= 0):
        return []  # past any row (a 64-bit overflow in the database driver otherwise)
    if offset > 0:
        q = q.offset(offset)
    if limit is not None:
        q = q.limit(min(limit, MAX_ROWS))
    return list(session.scalars(q).all())


def count_adapters(*, session: Session, filters: Filters | None = None) -> int:
    q = select(func.count(Adapter.id))
    return int(session.scalar(_filtered(q, filters) if filters else q) or 0)


def facets(*, session: Session) -> dict[str, list[str]]:
    """The values that filters can take today: distinct families, formats and origins of the rows."""
    cols = {"family": Adapter.family, "format": Adapter.format, "origin": Adapter.origin}
    return {name: sorted(str(v) for v in session.scalars(select(col).distinct())) for name, col in cols.items()}


def delete_adapter(*, session: Session, adapter: Adapter) -> None:
    """Delete the row with its lineage edges (both directions) and tag links."""
    session.delete(adapter)
    session.flush()


def record_encoder(
    *, session: Session, kind: str, family: str, version: str, path: str, metrics: dict[str, Any]
) -> EncoderCheckpoint:
    """Record a trained encoder checkpoint (idempotent on ``version``)."""
    row = session.scalar(select(EncoderCheckpoint).where(EncoderCheckpoint.version == version))
    if row is None:
        row = EncoderCheckpoint(kind=kind, family=family, version=version, path=path, metrics=metrics)
        session.add(row)
        session.flush()
    return row


def list_encoders(*, session: Session, kind: str | None = None) -> Sequence[EncoderCheckpoint]:
    """Checkpoints, oldest first (a later one of the same family supersedes an earlier one)."""
    q = select(EncoderCheckpoint).order_by(EncoderCheckpoint.id)
    if kind is not None:
        q = q.where(EncoderCheckpoint.kind == kind)
    return session.scalars(q).all()
