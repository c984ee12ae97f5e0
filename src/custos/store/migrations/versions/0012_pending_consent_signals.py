"""consent restrictions of anonymous calls, kept until a verified identify names the device

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("collect_pending") as batch:
        batch.add_column(sa.Column("signals", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("collect_pending") as batch:
        batch.drop_column("signals")
