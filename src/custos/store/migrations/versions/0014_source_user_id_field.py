"""what a collected source's user id is: the customer number (customer_id) or none

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
# 0013 is written on another branch at the same time: the merge makes this "0013".
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("user_id_field", sa.String(20), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("user_id_field")
