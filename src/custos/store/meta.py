"""Small named values of the store (e.g. the version of the identity graph)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from custos.store import tables as t


def get(conn: Connection, key: str) -> str | None:
    """The value stored under ``key``, or None."""
    return conn.execute(select(t.store_meta.c.value).where(t.store_meta.c.key == key)).scalar()


def put(conn: Connection, key: str, value: str) -> None:
    """Store ``value`` under ``key`` (inside the caller's write transaction)."""
    if get(conn, key) is None:
        conn.execute(t.store_meta.insert().values(key=key, value=value))
    else:
        conn.execute(t.store_meta.update().where(t.store_meta.c.key == key).values(value=value))


#: Changes whenever identity resolution rewrites profiles, memberships or identifiers.
GRAPH_VERSION = "graph_version"
#: The highest id the review queue (identity_candidates) ever gave: ids are never given twice.
REVIEW_ID = "review_id"
#: The form of the street keys of records and interactions (the version of
#: ``custos.ingest.normalise.street_key`` they were made with; absent: before version 2).
STREET_KEYS = "street_keys"
#: The highest raw id whose text ``interaction_quotes`` holds the quoted ids of (absent: none).
QUOTES_INDEXED = "quotes_indexed"
#: How many erasures deleted rows from the store (a resolution computed from a snapshot taken
#: before one must be computed again).
ERASURES = "erasures"


def bump(conn: Connection, key: str) -> int:
    """Add one to the counter ``key`` (inside the caller's write transaction); its new value."""
    value = int(get(conn, key) or 0) + 1
    put(conn, key, str(value))
    return value
