"""Engine, sessions and migrations. SQLite (embedded default: WAL, foreign keys on) or PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
MIGRATION_LOCK = 0x6C6F72616D6967  # PostgreSQL advisory lock key held while migrating
BLOB_LOCK_CLASS = 0x6C6F7262  # first key of the two-key advisory locks on content addresses ("lorb")
REEMBED_LOCK_CLASS = 0x6C6F7265  # first key of ``exclusive``'s advisory locks (e.g. re-embedding a kind)


def default_home() -> Path:
    """``LORADEX_HOME`` or ``~/.loradex``: the data dir (database, blobs, indexes)."""
    return Path(os.environ.get("LORADEX_HOME") or Path.home() / ".loradex").expanduser()


def default_url(home: Path | None = None) -> str:
    """``LORADEX_DB_URL`` or SQLite at ``<home>/loradex.db``."""
    env = os.environ.get("LORADEX_DB_URL")
    if env:
        return env
    return f"sqlite:///{(home or default_home()) / 'loradex.db'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run Alembic migrations up to ``revision`` on ``engine``."""
    _migrate(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    _migrate(engine, "downgrade", revision)


def _migrate(engine: Engine, direction: str, revision: str) -> None:
    with _sqlite_migration_lock(engine):
        _migrate_locked(engine, direction, revision)


def _sqlite_migration_lock(engine: Engine) -> contextlib.AbstractContextManager[None]:
    """Processes opening one SQLite file at once migrate one after the other (a file lock beside
    the database; PostgreSQL uses an advisory lock inside the migration's transaction)."""
    return _sqlite_file_lock(engine, "migrate-lock")


@contextmanager
def _sqlite_file_lock(engine: Engine, suffix: str) -> Iterator[None]:
    """A ``flock`` on ``<database>.<suffix>`` beside a SQLite file, for the block (the processes
    sharing a SQLite file share its folder); nothing for other databases or an in-memory one."""
    db = engine.url.database if engine.dialect.name == "sqlite" else None
    if not db or db == ":memory:":
        yield
        return
    import fcntl

    with open(f"{db}.{suffix}", "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _migrate_locked(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # A table rebuilt by a batch migration is dropped and recreated; with foreign keys on,
            # that DROP would cascade-delete every child row. The pragma only takes effect outside
            # a transaction, so it is set before the migration's transaction begins.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    # Replicas starting at once on one database: one migrates, the others wait and
                    # then find it at head (the lock ends with this transaction).
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                cfg.attributes["connection"] = conn
                getattr(command, direction)(cfg, revision)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left dangling foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def is_initialized(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


def blob_lock_keys(sha256: str) -> tuple[int, int]:
    """The two int4 keys of content address ``sha256``'s advisory lock: ``BLOB_LOCK_CLASS`` and the
    first 32 bits of the hash, signed. (Two-key locks never collide with the one-key locks of the
    migrations or the queue; two addresses sharing 32 bits only wait for each other.)"""
    objid = int(sha256[:8], 16)
    return BLOB_LOCK_CLASS, objid - (1 << 32) if objid >= 1 << 31 else objid


@contextmanager
def advisory_lock(engine: Engine, *keys: tuple[int, int]) -> Iterator[None]:
    """PostgreSQL session-level advisory locks on one connection of their own, held for the block
    (taken in sorted order, so two holders of overlapping sets never wait on each other in a cycle):
    each excludes every other holder of its keys in the database, whatever machine it runs on. If an
    unlock fails the connection is discarded, and the server drops the locks with its session."""
    conn = engine.connect()
    taken: list[tuple[int, int]] = []
    try:
        try:
            for c, o in sorted(set(keys)):
                conn.execute(text("SELECT pg_advisory_lock(:c, :o)"), {"c": c, "o": o})
                taken.append((c, o))
            conn.commit()  # the locks are the session's: no transaction stays open while they are held
            yield
        finally:
            try:
                for c, o in reversed(taken):
                    conn.execute(text("SELECT pg_advisory_unlock(:c, :o)"), {"c": c, "o": o})
                conn.commit()
            except Exception:
                conn.invalidate()
    finally:
        conn.close()


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """One holder at a time among every process on ``engine``'s database, for the block: a PostgreSQL
    advisory lock (``REEMBED_LOCK_CLASS``, a hash of ``name``), or a flock file beside a SQLite
    database (the processes sharing a SQLite file share its folder)."""
    if engine.dialect.name == "postgresql":
        with advisory_lock(engine, (REEMBED_LOCK_CLASS, zlib.crc32(name.encode()) & 0x7FFFFFFF)):
            yield
        return
    with _sqlite_file_lock(engine, f"{name}-lock"):
        yield
