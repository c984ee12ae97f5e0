"""surnames of more than one word indexed (partial indexes of ``records`` and ``interactions``):
identity reads a name given whole ("Malte Grein Groth") with the double surname a record gives
in its own column, and an incremental run asks the store for those

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

#: as custos.store.tables.DOUBLE_SURNAME was when this revision was written
_WHERE = "last_name_key LIKE '% %'"


def upgrade() -> None:
    """Apply this revision."""
    for table in ("records", "interactions"):
        op.create_index(
            f"ix_{table}_double_surname",
            table,
            ["last_name_key"],
            sqlite_where=sa.text(_WHERE),
            postgresql_where=sa.text(_WHERE),
        )


def downgrade() -> None:
    """Revert this revision."""
    for table in ("records", "interactions"):
        op.drop_index(f"ix_{table}_double_surname", table_name=table)
