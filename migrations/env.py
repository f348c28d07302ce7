"""Alembic environment: runs on the connection handed in by ``registry.db.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from registry.db import default_url
from registry.models import Base

target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic upgrade head` from the command line
    url = context.config.get_main_option("sqlalchemy.url") or default_url()
    with create_engine(url).begin() as conn:
        _run(conn)
