"""the ids each interaction's text quotes, indexed: an order arriving today finds the older call
notes that quote its number (the next resolution fills it for the rows stored before)

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "interaction_quotes",
        sa.Column("raw_id", _ID, sa.ForeignKey("raw_records.id"), nullable=False),
        sa.Column("word", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("raw_id", "word"),
    )
    op.create_index("ix_interaction_quotes_word", "interaction_quotes", ["word"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_interaction_quotes_word", table_name="interaction_quotes")
    op.drop_table("interaction_quotes")
    op.execute(sa.text("DELETE FROM store_meta WHERE key = 'quotes_indexed'"))
