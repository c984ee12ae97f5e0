"""Rectification (Art. 16): a correction is a new record, the provenance of the corrected value.

The record lives in source ``rectification`` with the request as its record id, joins the
profile (a "together" decision, so every later resolution keeps it there) and becomes the
attribute's golden value at once. The value it corrects is taken out of the person's other
normalised rows (their rows as received keep it, as provenance of what the source sent), so a
later resolution cannot choose it again. Identifiers (e-mail, phone, customer number, handle)
are added, not taken out: consent given under the old one still applies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select, update

from custos.core.errors import InputError
from custos.core.fields import GOLDEN_ADDRESS, GOLDEN_ATTRIBUTES, KEY_COLUMNS, STRONG_IDENTIFIERS
from custos.privacy.dsr.requests import Request
from custos.store import Store
from custos.store import golden as golden_store
from custos.store import tables as t
from custos.store.golden import GoldenValue

SOURCE = "rectification"
RULE = "rectified"
ADDRESS = GOLDEN_ADDRESS
NAMES = ("first_name", "last_name")
#: Comparison keys derived from a field, cleared with it.
KEYS = KEY_COLUMNS

#: Normalises person fields (canonical name → text) into the normalised columns of ``records``.
Normaliser = Callable[[dict[str, str]], dict[str, Any]]


def apply(
    conn: Connection,
    store: Store,
    request: Request,
    *,
    attribute: str,
    value: str,
    reason: str,
    source_id: int,
    normalise: Normaliser,
) -> dict[str, Any]:
    """Record the correction (inside the caller's write transaction); returns what it did."""
    pid = request.profile_id
    stored = golden_store.read_one(conn, pid)
    golden = {v.attribute: v.value for v in stored}
    canonical = attribute in GOLDEN_ATTRIBUTES
    if not canonical and attribute not in golden:
        raise InputError(
            f"profile {pid} has no attribute {attribute!r}",
            hint=f"rectify one of: {', '.join(sorted(set(GOLDEN_ATTRIBUTES) | set(golden)))}",
        )
    if not value.strip():
        raise InputError("the corrected value is empty", hint="give the correct value")
    changed: tuple[str, ...]
    if attribute in ADDRESS:
        given, changed = {a: golden[a] for a in ADDRESS if golden.get(a)}, ADDRESS
    elif attribute in NAMES:
        given, changed = {a: golden[a] for a in NAMES if golden.get(a)}, (attribute,)
    else:
        given, changed = {}, (attribute,)
    given[attribute] = value
    columns = normalise(given) if canonical else {}
    extra = None if canonical else {attribute: value}
    now = datetime.now(UTC)
    raw_id = store.next_id(conn, t.raw_records, 1)
    conn.execute(
        t.raw_records.insert().values(
            id=raw_id,
            source_id=source_id,
            record_id=request.ref,
            kind="records",
            file_name=None,
            line_no=None,
            payload=orjson.dumps({attribute: value, "request": request.ref}).decode(),
            ingested_at=now,
        )
    )
    conn.execute(
        t.records.insert().values(
            raw_id=raw_id,
            source_id=source_id,
            extra=orjson.dumps(extra).decode() if extra else None,
            observed_at=now,
            **columns,
        )
    )
    members = sorted(
        conn.execute(
            select(t.profile_members.c.raw_id).where(t.profile_members.c.profile_id == pid)
        ).scalars()
    )
    records = set(
        conn.execute(select(t.records.c.raw_id).where(t.records.c.raw_id.in_(members))).scalars()
    )
    anchor = min(records or set(members))
    conn.execute(t.profile_members.insert().values(raw_id=raw_id, profile_id=pid, linked_at=now))
    conn.execute(
        t.identity_decisions.insert().values(
            decision="together",
            left_raw_id=anchor,
            right_raw_id=raw_id,
            actor=request.actor,
            reason=f"rectification {request.ref}",
            at=now,
        )
    )
    old = golden.get(attribute)
    new = columns.get(attribute) if canonical else value
    superseded = 0
    if old is not None and old != new and attribute not in STRONG_IDENTIFIERS:
        superseded = _supersede(conn, members, attribute, old, canonical)
    kept = [v for v in stored if v.attribute not in changed]
    for name in changed:
        shown = (columns.get(name) if canonical else value) if name in given else None
        if shown is not None:
            kept.append(GoldenValue(name, str(shown), SOURCE, request.ref, now, RULE))
    golden_store.write(conn, pid, kept)
    identifier = attribute in STRONG_IDENTIFIERS and bool(new)
    if identifier:
        identifiers = t.profile_identifiers
        key = (
            (identifiers.c.kind == attribute)
            & (identifiers.c.value == new)
            & (identifiers.c.profile_id == pid)
        )
        if conn.execute(select(identifiers.c.kind).where(key)).first() is None:
            conn.execute(identifiers.insert().values(kind=attribute, value=new, profile_id=pid))
    conn.execute(
        t.profile_events.insert().values(
            at=now,
            actor=request.actor,
            action="rectify",
            profile_id=pid,
            other_profile_id=None,
            reason=f"{attribute} rectified ({request.ref}): {reason or 'no reason given'}",
        )
    )
    return {
        "attribute": attribute,
        "record": f"{SOURCE}:{request.ref}",
        "superseded_rows": superseded,
        "identifier": identifier,
    }


def _supersede(
    conn: Connection, members: list[int], attribute: str, old: str, canonical: bool
) -> int:
    """Take the corrected value out of the person's normalised rows; returns rows changed."""
    changed = 0
    if canonical:
        for table in (t.records, t.interactions):
            cleared = {attribute: None} | ({KEYS[attribute]: None} if attribute in KEYS else {})
            result = conn.execute(
                update(table)
                .where(table.c.raw_id.in_(members), table.c[attribute] == old)
                .values(**cleared)
            )
            changed += result.rowcount or 0
        return changed
    records = t.records
    rows = conn.execute(
        select(records.c.raw_id, records.c.extra).where(
            records.c.raw_id.in_(members), records.c.extra.is_not(None)
        )
    ).all()
    for raw_id, text in rows:
        extra = orjson.loads(text)
        if str(extra.get(attribute)) == old:
            del extra[attribute]
            conn.execute(
                update(records)
                .where(records.c.raw_id == raw_id)
                .values(extra=orjson.dumps(extra).decode() if extra else None)
            )
            changed += 1
    return changed
