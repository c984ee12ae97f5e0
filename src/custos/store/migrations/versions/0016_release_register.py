"""the register of de-identified releases, checked by the next release of a purpose

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from custos.store.tables import Timestamp

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "releases",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("linkable", sa.Boolean(), nullable=False),
        sa.Column("quasi_identifiers", sa.Text(), nullable=False),
        sa.Column("sensitive", sa.Text(), nullable=False),
        sa.Column("generalisation", sa.Text(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("l", sa.Integer(), nullable=False),
        sa.Column("reference_date", sa.String(10), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.Column("persons_z", sa.Text(), nullable=False),
        sa.Column("suppressed_z", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_releases_purpose", "releases", ["purpose"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_releases_purpose", table_name="releases")
    op.drop_table("releases")
