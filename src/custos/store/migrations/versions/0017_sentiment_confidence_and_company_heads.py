"""sentiment confidence with each score, and the sentiment heads a company trains

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from custos.store.tables import Timestamp

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("interaction_sentiment") as batch:
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
    # scores the e5-head engine made before: the probability of their label (the most probable
    # class); the lexicon's probabilities are not calibrated, so its scores carry none
    op.execute(
        "UPDATE interaction_sentiment SET confidence = CASE "
        "WHEN p_negative >= p_neutral AND p_negative >= p_positive THEN p_negative "
        "WHEN p_neutral >= p_positive THEN p_neutral ELSE p_positive END "
        "WHERE p_negative IS NOT NULL AND engine = 'e5-head'"
    )
    op.create_table(
        "sentiment_heads",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("trained_on", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("head", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("sentiment_heads")
    with op.batch_alter_table("interaction_sentiment") as batch:
        batch.drop_column("confidence")
