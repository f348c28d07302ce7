"""index change log: replicas follow adds and removes of embeddings

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # AUTOINCREMENT on SQLite: a sequence number is never handed out twice, even after pruning.
    op.create_table(
        "index_changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("adapter_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_index_changes")),
        sqlite_autoincrement=True,
    )
    state = op.create_table(
        "index_change_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_change_state")),
    )
    op.bulk_insert(state, [{"id": 1, "pruned_through": 0}])


def downgrade() -> None:
    op.drop_table("index_change_state")
    op.drop_table("index_changes")
