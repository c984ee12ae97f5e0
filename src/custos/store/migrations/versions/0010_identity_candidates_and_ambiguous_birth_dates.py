"""pairs kept for review and conservative consent; ambiguous birth dates kept as candidates

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from custos.store.tables import Timestamp

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    for table in ("records", "interactions"):
        op.add_column(table, sa.Column("date_of_birth_candidates", sa.Text(), nullable=True))
    op.create_table(
        "identity_candidates",
        sa.Column("id", _ID, nullable=False),
        sa.Column("left_raw_id", _ID, nullable=False),
        sa.Column("right_raw_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("weight", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["left_raw_id"], ["raw_records.id"]),
        sa.ForeignKeyConstraint(["right_raw_id"], ["raw_records.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_identity_candidates_left", "identity_candidates", ["left_raw_id"])
    op.create_index("ix_identity_candidates_right", "identity_candidates", ["right_raw_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_identity_candidates_right", table_name="identity_candidates")
    op.drop_index("ix_identity_candidates_left", table_name="identity_candidates")
    op.drop_table("identity_candidates")
    for table in ("interactions", "records"):
        op.drop_column(table, "date_of_birth_candidates")
