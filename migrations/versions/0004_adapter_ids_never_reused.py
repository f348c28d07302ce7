"""adapter ids are never reused (SQLite AUTOINCREMENT)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 17:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL's serial ids never go back; SQLite needs the table rebuilt with AUTOINCREMENT
    # (``registry.db.upgrade`` turns foreign keys off around it so the rebuild cascades nothing).
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("adapters", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("adapters", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
