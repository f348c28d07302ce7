"""SQLAlchemy 2.0 models. Alembic (``migrations/``) owns the schema; no ``create_all`` in prod."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ORIGINS = ("ingested", "generated", "merged")
# Adapters this service made (every origin but "ingested") have names of their own: one partial
# unique index, so two workers registering the same name at once cannot both commit it. Ingested
# adapters keep whatever name their file gives them and may share it (a reference by such a name is
# reported ambiguous).
MADE_NAME_WHERE = "origin <> 'ingested'"


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


adapter_tags = Table(
    "adapter_tags",
    Base.metadata,
    Column("adapter_id", ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class BaseFamily(Base):
    """A base model family adapters are trained for (sd1, sdxl, flux, gpt2, …)."""

    __tablename__ = "base_families"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # diffusion | llm | encoder | unknown
    label: Mapped[str] = mapped_column(String(200))


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Adapter(Base):
    """One registered adapter; its files live in the blob store under ``sha256``."""

    __tablename__ = "adapters"
    # SQLite reuses the largest rowid after a delete without AUTOINCREMENT: a removed adapter's id
    # would name the next one ingested, so a retried DELETE or a cached id acts on the wrong adapter.
    __table_args__ = (
        Index(
            "uq_adapters_made_name",
            "name",
            unique=True,
            sqlite_where=text(MADE_NAME_WHERE),
            postgresql_where=text(MADE_NAME_WHERE),
        ),  # fmt: skip
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    family: Mapped[str] = mapped_column(ForeignKey("base_families.id"), index=True)
    format: Mapped[str] = mapped_column(String(32), index=True)
    origin: Mapped[str] = mapped_column(String(16), default="ingested", index=True)
    ranks: Mapped[list[Any]] = mapped_column(JSON)  # distinct ranks, sorted
    module_count: Mapped[int] = mapped_column(Integer)
    modules: Mapped[list[Any]] = mapped_column(JSON)  # [{name, rank, kind, in, out, scale, error?}]
    param_count: Mapped[int] = mapped_column(BigInteger)
    file_size: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[list[Any]] = mapped_column(JSON)  # file names inside the blob folder
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    trigger_words: Mapped[list[Any]] = mapped_column(JSON, default=list)
    license: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)  # where it was ingested from
    base_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    tags: Mapped[list[Tag]] = relationship(secondary=adapter_tags, lazy="selectin")
    parents: Mapped[list[Lineage]] = relationship(
        foreign_keys="Lineage.child_id", back_populates="child", cascade="all, delete-orphan", lazy="selectin"
    )
    children: Mapped[list[Lineage]] = relationship(
        foreign_keys="Lineage.parent_id", back_populates="parent", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def tag_names(self) -> list[str]:
        return sorted(t.name for t in self.tags)


class Lineage(Base):
    """child was made from parent (generated / merged), with a weight and a method name."""

    __tablename__ = "lineage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("adapters.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("adapters.id", ondelete="CASCADE"), index=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    method: Mapped[str] = mapped_column(String(64))

    child: Mapped[Adapter] = relationship(foreign_keys=[child_id], back_populates="parents")
    parent: Mapped[Adapter] = relationship(foreign_keys=[parent_id], back_populates="children")


class AdapterEmbedding(Base):
    """One vector per (adapter, kind) with the encoder version that made it.

    kind: ``text`` (metadata text through the text encoder) or ``weights`` (weight encoder).
    Vectors are float32 little-endian bytes, L2-normalized.
    """

    __tablename__ = "adapter_embeddings"

    adapter_id: Mapped[int] = mapped_column(ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    encoder_version: Mapped[str] = mapped_column(String(128), index=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class EncoderCheckpoint(Base):
    """A trained encoder (e.g. a weight encoder for one base family): where it lives and how well it did."""

    __tablename__ = "encoder_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # weights
    family: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(128), unique=True)
    # ``blob:<sha256>``: the folder's files in the blob store (``registry.checkpoints``); rows recorded
    # before that hold the folder's path (relative to the data dir when inside it)
    path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class JobRecord(Base):
    """A long operation (ingest, train, generate, merge, compose) as last saved by the process that
    ran it: its state and results survive a restart (``loradex.jobs.JobStore``)."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued | running | done | failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # result, output, encoder, error
    staged: Mapped[str | None] = mapped_column(Text, nullable=True)  # staged upload folder, removed at the end
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class IndexChange(Base):
    """One entry of the index change log: adapter ``adapter_id``'s ``kind`` embedding (None: every
    kind) was added/replaced (``add``) or removed (``remove``). Written in the transaction that
    changed the rows; ``seq`` only grows, in commit order (``registry.changes``)."""

    __tablename__ = "index_changes"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                     autoincrement=True)  # fmt: skip
    adapter_id: Mapped[int] = mapped_column(Integer)  # no foreign key: a removal outlives its row
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    op: Mapped[str] = mapped_column(String(8))  # add | remove
    created_at: Mapped[float] = mapped_column(Float)


class IndexChangeState(Base):
    """One row: the change log has been pruned through ``pruned_through`` (a replica that applied
    less than that must rebuild from the stored embeddings)."""

    __tablename__ = "index_change_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    pruned_through: Mapped[int] = mapped_column(BigInteger)
