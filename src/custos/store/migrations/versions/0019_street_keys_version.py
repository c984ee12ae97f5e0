"""which form of street keys the store holds: a new store holds the current one; a store with
rows keyed before street types were folded (Lane and Ln) is re-keyed by its next resolution

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

#: store_meta key and value, as custos.store.meta.STREET_KEYS and
#: custos.ingest.normalise.STREET_KEY_VERSION were when this revision was written.
_KEY, _VERSION = "street_keys", "2"


def upgrade() -> None:
    """Apply this revision."""
    conn = op.get_bind()
    rows = sum(
        conn.execute(
            sa.text(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT 1) AS one")
        ).scalar_one()
        for table in ("records", "interactions")
    )
    if not rows:  # nothing keyed the old way: every key this store gets is of this form
        conn.execute(
            sa.text("INSERT INTO store_meta (key, value) VALUES (:key, :value)"),
            {"key": _KEY, "value": _VERSION},
        )


def downgrade() -> None:
    """Revert this revision."""
    op.get_bind().execute(sa.text("DELETE FROM store_meta WHERE key = :key"), {"key": _KEY})
