"""Versions of a record: a row re-ingested under its record id with other values replaces the
current one, and the one it replaces is kept in ``record_versions``.

The record keeps its raw id (so its profile, merge evidence and decisions stay), and is marked
for the next resolution (``identity_recheck``), which links it by its new values and rebuilds
its profile's golden record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Table, bindparam, delete, func, select, update

from custos.core.fields import Kind
from custos.ingest.rows import COLUMNS, Good
from custos.store import Store
from custos.store import tables as t


def replace(
    store: Store,
    conn: Connection,
    kind: Kind,
    file_name: str,
    changed: dict[int, Good],
    now: datetime,
) -> None:
    """Make the changed rows (raw id → new row, of ``kind``, read from ``file_name``) the
    current versions of their records, inside the caller's write transaction.

    The version they replace moves to ``record_versions`` (verbatim and normalised, with
    when it was ingested); the raw and normalised rows are updated in place, so the record
    keeps its raw id, its profile and its place in merge evidence and decisions. The record
    is marked for the next incremental resolution (``identity_recheck``), which links it
    by its new values and rebuilds its profile's golden record; a sentiment score of an
    interaction's old text is dropped, to be scored again."""
    target: Table = t.records if kind is Kind.RECORDS else t.interactions
    names = COLUMNS[kind]
    ids = sorted(changed)
    old: dict[int, dict[str, Any]] = {}
    numbers: dict[int, int] = {}
    for chunk in store.chunks(ids):
        query = (
            select(
                *t.raw_records.c["id", "file_name", "line_no", "payload", "ingested_at"],
                *(target.c[name] for name in names),
            )
            .join(target, target.c.raw_id == t.raw_records.c.id)
            .where(t.raw_records.c.id.in_(chunk))
        )
        for raw_id, file_name, line_no, payload, ingested_at, *values in conn.execute(query):
            fields = {k: v for k, v in zip(names, values, strict=True) if v is not None}
            old[raw_id] = {
                "raw_id": raw_id,
                "file_name": file_name,
                "line_no": line_no,
                "payload": payload,
                "fields": orjson.dumps(fields, default=str).decode(),
                "ingested_at": ingested_at,
                "superseded_at": now,
            }
        numbers.update(
            conn.execute(
                select(t.record_versions.c.raw_id, func.max(t.record_versions.c.version))
                .where(t.record_versions.c.raw_id.in_(chunk))
                .group_by(t.record_versions.c.raw_id)
            ).all()
        )
    store.insert_many(
        conn,
        t.record_versions,
        [{**old[r], "version": numbers.get(r, 0) + 1} for r in ids if r in old],
    )
    conn.execute(
        update(t.raw_records)
        .where(t.raw_records.c.id == bindparam("rid"))
        .values(
            payload=bindparam("v_payload"),
            file_name=file_name,
            line_no=bindparam("v_line"),
            ingested_at=now,
        ),
        [{"rid": r, "v_payload": changed[r].payload, "v_line": changed[r].line_no} for r in ids],
    )
    conn.execute(
        update(target)
        .where(target.c.raw_id == bindparam("rid"))
        .values(observed_at=now, **{name: bindparam(f"v_{name}") for name in names}),
        [
            {"rid": r, **{f"v_{k}": v for k, v in zip(names, changed[r].values, strict=True)}}
            for r in ids
        ],
    )
    recheck = t.identity_recheck
    for chunk in store.chunks(ids):
        marked = set(
            conn.execute(select(recheck.c.raw_id).where(recheck.c.raw_id.in_(chunk))).scalars()
        )
        if kind is Kind.INTERACTIONS:
            sentiment = t.interaction_sentiment
            conn.execute(delete(sentiment).where(sentiment.c.raw_id.in_(chunk)))
        store.insert_many(conn, recheck, [{"raw_id": r} for r in chunk if r not in marked])
