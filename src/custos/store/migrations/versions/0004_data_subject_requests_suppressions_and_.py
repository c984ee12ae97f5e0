"""data subject requests, suppressions and restrictions

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from custos.store.tables import Timestamp

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "dsr_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("updated_at", Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dsr_requests", schema=None) as batch_op:
        batch_op.create_index("ix_dsr_requests_profile", ["profile_id"], unique=False)

    op.create_table(
        "restrictions",
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("since", Timestamp(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("profile_id"),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column(
            "request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "digest", name="uq_suppressions_kind_digest"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("suppressions")
    op.drop_table("restrictions")
    with op.batch_alter_table("dsr_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_dsr_requests_profile")

    op.drop_table("dsr_requests")
