"""quarantine entries are closed when their row later lands

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from custos.store.tables import Timestamp

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("closed_at", Timestamp(), nullable=True))
        batch.add_column(
            sa.Column("left_out", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Entries listing a field left out of a stored row, as their reasons said until now.
    q = sa.table(
        "quarantine",
        sa.column("reason", sa.Text),
        sa.column("field", sa.String),
        sa.column("file_name", sa.Text),
        sa.column("left_out", sa.Boolean),
    )
    op.execute(
        q.update()
        .where(
            q.c.reason.like("%(row stored without this field)")
            | q.c.reason.like("ambiguous date: kept both readings%")
            | ((q.c.file_name == "collect") & (q.c.field == "consent"))
        )
        .values(left_out=True)
    )
    op.create_index("ix_quarantine_record", "quarantine", ["source_id", "record_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_quarantine_record", table_name="quarantine")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("left_out")
        batch.drop_column("closed_at")
