"""match models and per-field merge evidence

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from custos.store.tables import Timestamp

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "match_models",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("design", sa.String(length=20), nullable=False),
        sa.Column("trained_at", Timestamp(), nullable=False),
        sa.Column("trained_on", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("term_frequencies", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("merge_evidence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("merge_evidence", schema=None) as batch_op:
        batch_op.drop_column("detail")

    op.drop_table("match_models")
