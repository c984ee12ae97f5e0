"""collected anonymous calls waiting for their user id; rows for resolution to recheck

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "collect_pending",
        sa.Column("anonymous_id", sa.String(length=200), nullable=False),
        sa.Column("raw_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(["raw_id"], ["raw_records.id"]),
        sa.PrimaryKeyConstraint("anonymous_id", "raw_id"),
    )
    op.create_table(
        "identity_recheck",
        sa.Column("raw_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(["raw_id"], ["raw_records.id"]),
        sa.PrimaryKeyConstraint("raw_id"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("identity_recheck")
    op.drop_table("collect_pending")
