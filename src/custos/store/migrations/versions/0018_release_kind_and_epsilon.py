"""the release register's kind (rows or aggregate) and each aggregate's ε, for the per-purpose
privacy budget

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="rows"))
        batch.add_column(sa.Column("epsilon", sa.Float(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("epsilon")
        batch.drop_column("kind")
