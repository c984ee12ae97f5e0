"""golden records as one document per profile

``profile_attributes`` (one row per profile and attribute, each repeating its provenance)
becomes ``profile_golden`` (one JSON document per profile, see ``custos.store.golden``): a full
resolution of a million records wrote four million golden rows, the largest table of the store.
The rows are carried over; the downgrade splits the documents again.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from datetime import datetime
from itertools import groupby
from operator import itemgetter

import sqlalchemy as sa
from alembic import op

from custos.store.golden import GoldenValue, decode, encode
from custos.store.tables import Timestamp

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 5000


def _golden_table() -> sa.Table:
    return op.create_table(
        "profile_golden",
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"]),
        sa.PrimaryKeyConstraint("profile_id"),
        sqlite_with_rowid=False,
    )


def _attributes_table() -> sa.Table:
    return op.create_table(
        "profile_attributes",
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("attribute", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("observed_at", Timestamp(), nullable=False),
        sa.Column("rule", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"]),
        sa.PrimaryKeyConstraint("profile_id", "attribute"),
        sqlite_with_rowid=False,
    )


def _old_attributes() -> sa.Table:
    return sa.Table(
        "profile_attributes",
        sa.MetaData(),
        sa.Column("profile_id", sa.String(40)),
        sa.Column("attribute", sa.String(50)),
        sa.Column("value", sa.Text),
        sa.Column("source", sa.String(200)),
        sa.Column("record_id", sa.String(200)),
        sa.Column("observed_at", Timestamp()),
        sa.Column("rule", sa.String(30)),
    )


def upgrade() -> None:
    """Apply this revision."""
    bind = op.get_bind()
    golden = _golden_table()
    old = _old_attributes()
    rows = bind.execute(sa.select(old).order_by(old.c.profile_id, old.c.attribute))
    batch: list[dict[str, str]] = []
    for pid, group in groupby(rows, key=itemgetter(0)):
        values = [GoldenValue(*row[1:]) for row in group]
        batch.append({"profile_id": pid, "document": encode(values)})
        if len(batch) == _BATCH:
            bind.execute(golden.insert(), batch)
            batch = []
    if batch:
        bind.execute(golden.insert(), batch)
    op.drop_table("profile_attributes")


def downgrade() -> None:
    """Revert this revision."""
    bind = op.get_bind()
    attributes = _attributes_table()
    documents = sa.table("profile_golden", sa.column("profile_id"), sa.column("document"))
    batch: list[dict[str, str | datetime]] = []
    for pid, document in bind.execute(sa.select(documents.c.profile_id, documents.c.document)):
        for v in decode(document):
            batch.append(
                {
                    "profile_id": pid,
                    "attribute": v.attribute,
                    "value": v.value,
                    "source": v.source,
                    "record_id": v.record_id,
                    "observed_at": v.observed_at,
                    "rule": v.rule,
                }
            )
        if len(batch) >= _BATCH:
            bind.execute(attributes.insert(), batch)
            batch = []
    if batch:
        bind.execute(attributes.insert(), batch)
    op.drop_table("profile_golden")
