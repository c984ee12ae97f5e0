"""Street keys of the form :func:`custos.ingest.normalise.street_key` makes now.

Identity compares addresses by the stored ``street_key`` of records and interactions. When the
form changes (version 2 folded street types: ``84 Knapp Lane`` and ``84 Knapp Ln`` are one
address), rows keyed before would no longer meet rows keyed after, so a store whose keys are of
an older form is re-keyed from its stored streets before it resolves. A new store is marked
current when it is created (migration 0019) and never scanned.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select, update

from custos.ingest.normalise import STREET_KEY_VERSION, street_key
from custos.store import Store, meta
from custos.store import tables as t

#: Rows changed per statement.
_BATCH = 5_000


def rekey_streets(store: Store) -> int:
    """Make every stored street key of the current form, once per form; returns how many rows
    changed (0 when the store is current, without reading a row)."""
    with store.read() as conn:
        if meta.get(conn, meta.STREET_KEYS) == STREET_KEY_VERSION:
            return 0
    changed = 0
    with store.write() as conn:
        for table in (t.records, t.interactions):
            rows = conn.execute(
                select(table.c.raw_id, table.c.street, table.c.street_key).where(
                    table.c.street.is_not(None)
                )
            )
            # (streamed: only the keys that change are held, then written)
            stale = [
                {"id": raw_id, "key": key}
                for raw_id, street, old in rows
                if (key := street_key(street)) != old
            ]
            statement = (
                update(table)
                .where(table.c.raw_id == bindparam("id"))
                .values(street_key=bindparam("key"))
            )
            for start in range(0, len(stale), _BATCH):
                conn.execute(statement, stale[start : start + _BATCH])
            changed += len(stale)
        meta.put(conn, meta.STREET_KEYS, STREET_KEY_VERSION)
    return changed
