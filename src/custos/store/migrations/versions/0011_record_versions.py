"""earlier versions of re-ingested records (a changed row is a new version, not a duplicate)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from custos.store.tables import Timestamp

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "record_versions",
        sa.Column("raw_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("ingested_at", Timestamp(), nullable=False),
        sa.Column("superseded_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["raw_id"], ["raw_records.id"]),
        sa.PrimaryKeyConstraint("raw_id", "version"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("record_versions")
