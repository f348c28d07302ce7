"""encoder checkpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "encoder_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encoder_checkpoints")),
        sa.UniqueConstraint("version", name=op.f("uq_encoder_checkpoints_version")),
    )
    with op.batch_alter_table("encoder_checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_encoder_checkpoints_family"), ["family"], unique=False)
        batch_op.create_index(batch_op.f("ix_encoder_checkpoints_kind"), ["kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("encoder_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_encoder_checkpoints_kind"))
        batch_op.drop_index(batch_op.f("ix_encoder_checkpoints_family"))
    op.drop_table("encoder_checkpoints")
