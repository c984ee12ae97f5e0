"""The sink every source feeds: what happens to normalised rows on their way into the store,
whether they come from a file (:mod:`custos.ingest.pipeline`) or from collected calls
(:mod:`custos.service.collect`).

One place for each rule of that way in:

- **source ids**: a source is created on first use and holds one kind of rows
  (:func:`ensure_source`); :class:`SourceIds` remembers them for an instance that writes often;
- **duplicate lookup**: which keys are stored already (:meth:`Store.existing_keys`), one indexed look-up
  per chunk inside the writing transaction;
- **suppression**: whether a row about to be stored is an erased person's
  (:func:`suppression_key`, :func:`suppressed`);
- **quarantine**: entries keyed by their content (:func:`row_key`), each written once
  (:func:`quarantine`), erased persons' rows without their values (:func:`entry`), and entries
  closed once their rows land (:func:`close_landed`).

Each source decides what its keys are made of (a file's row by its content, a call by its
message id), the sink how they are looked up, written and closed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from custos.core.errors import ConfigError
from custos.core.fields import Kind
from custos.ingest import normalise as n
from custos.ingest.rows import CANDIDATES, COLUMNS, Bad, Good
from custos.store import Store
from custos.store import tables as t

#: Asked about every row while erased persons are suppressed: (source, record id, the normalised
#: fields, or None for a row that did not normalise, the row as received) → None to go on, or an
#: opaque key under which the row is quarantined as suppressed, with no values.
SuppressionCheck = Callable[[str, str | None, Mapping[str, Any] | None, str], str | None]
SUPPRESSED_REASON = "suppressed by an erasure request"
SUPPRESSED_FIX = "none: the person asked for erasure; remove their rows from the source"
#: The file name of rows collected through the API (Segment, RudderStack calls), not read from a
#: file: their quarantine entries close when the call is sent again.
COLLECTED = "collect"


def ensure_source(conn: Connection, name: str, kind: Kind) -> int:
    """The id of source ``name``, created on first use; one source holds one kind of rows."""
    row = conn.execute(
        select(t.sources.c.id, t.sources.c.kind).where(t.sources.c.name == name)
    ).first()
    if row is None:
        now = datetime.now(UTC)
        conn.execute(t.sources.insert().values(name=name, kind=kind.value, created_at=now))
        return int(
            conn.execute(select(t.sources.c.id).where(t.sources.c.name == name)).scalar_one()
        )
    source_id, existing_kind = int(row[0]), Kind(row[1])
    if kind is not Kind.CONSENTS and existing_kind is not kind:
        if existing_kind is Kind.CONSENTS:
            conn.execute(
                t.sources.update().where(t.sources.c.id == source_id).values(kind=kind.value)
            )
        else:
            raise ConfigError(
                f"source {name!r} holds {existing_kind.value}, not {kind.value}",
                hint=f"ingest {kind.value} under another --source name",
            )
    return source_id


class SourceIds:
    """The ids of the sources one custos instance has written to, looked up once each.

    A source keeps its id for good, and once it holds a kind of rows (records or
    interactions) it keeps that kind too, so a remembered (name, kind) needs no check again.
    ``known`` is the instance's memory (:attr:`custos.service.Custos.source_ids`). Ids are
    remembered only once the transaction that found them has committed (:meth:`remember`): a
    source created in a transaction that rolled back does not exist.
    """

    def __init__(self, known: dict[tuple[str, Kind], int], kind: Kind) -> None:
        self.kind = kind
        self._cached = known
        self._found: dict[tuple[str, Kind], int] = {}

    def of(self, conn: Connection, names: Iterable[str]) -> dict[str, int]:
        """The id of each source named (created on first use), inside ``conn``'s transaction."""
        ids: dict[str, int] = {}
        for name in dict.fromkeys(names):
            key = (name, self.kind)
            found = self._cached.get(key)
            if found is None:
                found = self._found[key] = ensure_source(conn, name, self.kind)
            ids[name] = found
        return ids

    def remember(self) -> None:
        """Keep the ids looked up, now that their transaction has committed."""
        self._cached.update(self._found)


def stored_records(conn: Connection, keys: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which of these (source id, record id) pairs are stored already as raw records (the
    unique key of ``raw_records``)."""
    wanted: dict[int, dict[str, None]] = {}
    for source_id, record_id in keys:
        wanted.setdefault(source_id, {})[record_id] = None
    return {
        (source_id, record_id)
        for source_id, ids in wanted.items()
        for record_id in Store.of(conn).existing_keys(
            conn, t.raw_records.c.record_id, list(ids), (t.raw_records.c.source_id, source_id)
        )
    }


def suppression_key(
    check: SuppressionCheck,
    source: str,
    record_id: str | None,
    fields: Mapping[str, Any],
    raw: str,
    *,
    left_out: bool = False,
) -> str | None:
    """The check's key when a row about to be stored is an erased person's, else None.

    The row is checked on its normalised fields; its phone also in its other forms (a number
    stored as national digits meets the person's E.164 number of the same digits, see
    ``normalise.phone_erasure_probes``); its customer id also upper-cased (an id one source
    keeps exactly meets the person's id another stored with ``normalise: upper``, and the
    erasure keeps the upper-cased form of each id too: a restriction follows a possible
    match); a row stored without a field that did not normalise
    (``left_out``) also as received, as a quarantined row is (the left-out value may still
    name the person); and an ambiguous birth date on each of its readings."""
    key = check(source, record_id, fields, raw)
    if key is None and left_out:
        key = check(source, record_id, None, raw)
    if key is None and (phone := fields.get("phone")):
        for probe in n.phone_erasure_probes(phone):
            key = key or check(source, None, {"phone": probe}, raw)
    if key is None and (cid := fields.get("customer_id")) and (upper := n.customer_id_upper(cid)):
        key = check(source, None, {"customer_id": upper}, raw) if upper != cid else None
    for reading in (fields.get(CANDIDATES) or "").split():
        key = key or check(source, None, {**fields, "date_of_birth": reading}, raw)
    return key


def suppressed(
    check: SuppressionCheck,
    source: str,
    kind: Kind,
    row: Good,
    *,
    left_out: bool,
    claims: Mapping[str, Any] | None = None,
) -> str | None:
    """:func:`suppression_key` of a normalised row of ``kind`` (``claims``: what a collected
    call only claims of a person, checked too: a claim would keep the person's identifiers in
    clear)."""
    names = COLUMNS.get(kind)
    fields = dict(zip(names, row.values, strict=True)) if names else row.values
    for name, value in (claims or {}).items():
        if fields.get(name) is None:
            fields[name] = value
    record_id = None if kind is Kind.CONSENTS else row.record_id or None  # an event names none
    return suppression_key(check, source, record_id, fields, row.payload, left_out=left_out)


def row_key(source: str, kind: Kind, body: str) -> str:
    """The key of a quarantine entry: the same ``body`` (what the source makes it of: a row's
    content, a call's message id, an erased person's key) of the same source and kind is one
    entry."""
    return hashlib.sha256(f"{source}\x1f{kind.value}\x1f{body}".encode()).hexdigest()


def entry(
    key: str,
    source_id: int,
    kind: Kind,
    file_name: str,
    created_at: datetime,
    line_no: int,
    bad: Bad | None,
    *,
    left_out: bool = False,
) -> dict[str, Any]:
    """A quarantine entry: ``bad``, with its reason and the row as received, or (None) an
    erased person's row: where it is and why, never its values."""
    if bad is None:
        record_id = field = raw = None
        reason, fix = SUPPRESSED_REASON, SUPPRESSED_FIX
    else:
        record_id, field, raw, reason, fix = bad.record_id, bad.field, bad.raw, bad.reason, bad.fix
    return {
        "row_key": key,
        "source_id": source_id,
        "kind": kind.value,
        "file_name": file_name,
        "line_no": line_no,
        "record_id": record_id,
        "field": field,
        "reason": reason,
        "fix": fix,
        "raw": raw,
        "left_out": left_out,
        "created_at": created_at,
    }


def quarantine(store: Store, conn: Connection, entries: Mapping[str, dict[str, Any]]) -> int:
    """Write the quarantine entries (by row key) not written before; how many were new."""
    fresh = dict(entries)
    for known in Store.of(conn).existing_keys(conn, t.quarantine.c.row_key, list(fresh)):
        del fresh[known]
    store.insert_many(conn, t.quarantine, list(fresh.values()))
    return len(fresh)


def close_landed(
    conn: Connection,
    source_id: int,
    kind: Kind,
    landed: Iterable[tuple[str, str]],
    now: datetime,
    entries: Iterable[int] = (),
) -> int:
    """Close the open quarantine entries whose rows have landed now; how many were closed.

    ``landed``: (record id, payload) of the rows of ``kind`` of ``source_id`` written, or found
    stored unchanged, now (the first of a repeated id counts). Every open entry of such a record
    id and kind (a consent event's id names no record) is closed, except one that lists a field
    left out of the row as it is now (same payload); ``entries``: ids of entries whose row was
    re-read and landed (``custos quarantine retry``, or a fixed row of ``custos quarantine
    export``).
    """
    rows: dict[str, str] = {}
    for record_id, payload in landed:
        if record_id:
            rows.setdefault(record_id, payload)
    done = set(entries)
    also = tuple(t.quarantine.c["id", "raw", "left_out", "closed_at"])
    where = ((t.quarantine.c.source_id, source_id), (t.quarantine.c.kind, kind.value))
    for record_id, entry_id, raw, left_out, closed_at in Store.of(conn).existing_keys(
        conn, t.quarantine.c.record_id, list(rows), *where, also=also
    ):
        if closed_at is None and not (left_out and raw == rows[record_id]):
            done.add(int(entry_id))
    ids = sorted(done)
    closed = 0
    for chunk in Store.of(conn).chunks(ids):
        result = conn.execute(
            t.quarantine.update()
            .where(
                t.quarantine.c.id.in_(chunk),
                t.quarantine.c.source_id == source_id,
                t.quarantine.c.closed_at.is_(None),
            )
            .values(closed_at=now)
        )
        closed += result.rowcount
    return closed
