"""the whole text of a note that names a health matter, apart from its redacted text

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("health_text", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("health_text")
