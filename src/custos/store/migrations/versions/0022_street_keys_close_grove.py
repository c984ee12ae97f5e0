"""street keys of form 4 (British ``Gr`` is ``Grove``, ``Cl`` is ``Close``; Dutch ``straat`` and
``str.`` are one, so are ``laan`` and ``ln``): a new store holds them; a store with rows keyed in
an earlier form is re-keyed by its next resolution

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

#: store_meta key and values, as custos.store.meta.STREET_KEYS and
#: custos.ingest.normalise.STREET_KEY_VERSION were when this revision was written.
_KEY, _VERSION, _BEFORE = "street_keys", "4", "3"


def _empty(conn: sa.Connection) -> bool:
    return not sum(
        conn.execute(
            sa.text(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT 1) AS one")
        ).scalar_one()
        for table in ("records", "interactions")
    )


def upgrade() -> None:
    """Apply this revision."""
    conn = op.get_bind()
    if _empty(conn):  # nothing keyed the old way: every key this store gets is of this form
        conn.execute(sa.text("DELETE FROM store_meta WHERE key = :key"), {"key": _KEY})
        conn.execute(
            sa.text("INSERT INTO store_meta (key, value) VALUES (:key, :value)"),
            {"key": _KEY, "value": _VERSION},
        )


def downgrade() -> None:
    """Revert this revision."""
    conn = op.get_bind()
    if _empty(conn):
        conn.execute(
            sa.text("UPDATE store_meta SET value = :value WHERE key = :key"),
            {"key": _KEY, "value": _BEFORE},
        )
    else:  # keys of form 4 are no keys of form 3: the next resolution re-keys them
        conn.execute(sa.text("DELETE FROM store_meta WHERE key = :key"), {"key": _KEY})
