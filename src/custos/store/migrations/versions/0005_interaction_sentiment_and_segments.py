"""interaction sentiment and segments

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from custos.store.tables import Timestamp

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "segments",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "interaction_sentiment",
        sa.Column(
            "raw_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("engine", sa.String(length=50), nullable=False),
        sa.Column("engine_version", sa.String(length=50), nullable=False),
        sa.Column("label", sa.String(length=20), nullable=False),
        sa.Column("p_negative", sa.Float(), nullable=True),
        sa.Column("p_neutral", sa.Float(), nullable=True),
        sa.Column("p_positive", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("language", sa.String(length=20), nullable=False),
        sa.Column("scored_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["raw_id"],
            ["raw_records.id"],
        ),
        sa.PrimaryKeyConstraint("raw_id"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("interaction_sentiment")
    op.drop_table("segments")
