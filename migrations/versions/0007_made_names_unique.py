"""made adapters' names are unique (partial unique index on adapters.name where origin <> 'ingested')

Two workers registering generated or merged adapters at the same instant could both pick the same
free name; the index lets one commit and the other choose again. Ingested adapters may still share
names. Made adapters that already share a name keep it on the oldest row; the others get their id
appended (``name-<id>``), as the index could not be created otherwise.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MADE = "origin <> 'ingested'"
NAME_LEN = 255


def upgrade() -> None:
    conn = op.get_bind()
    taken = {r[0] for r in conn.execute(sa.text(f"SELECT DISTINCT name FROM adapters WHERE {MADE}"))}
    seen: set[str] = set()
    for adapter_id, name in conn.execute(sa.text(f"SELECT id, name FROM adapters WHERE {MADE} ORDER BY id")).all():
        if name not in seen:
            seen.add(name)
            continue
        suffix = f"-{adapter_id}"
        new = name[: NAME_LEN - len(suffix)] + suffix
        while new in taken:  # a made adapter already has that name: lengthen until free
            suffix += "x"
            new = name[: NAME_LEN - len(suffix)] + suffix
        conn.execute(sa.text("UPDATE adapters SET name = :n WHERE id = :i"), {"n": new, "i": adapter_id})
        taken.add(new)
        seen.add(new)
    op.create_index("uq_adapters_made_name", "adapters", ["name"], unique=True, sqlite_where=sa.text(MADE),
                    postgresql_where=sa.text(MADE))  # fmt: skip


def downgrade() -> None:
    op.drop_index("uq_adapters_made_name", table_name="adapters")
