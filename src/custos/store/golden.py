"""Golden records as stored: one JSON document per profile (table ``profile_golden``).

A document names the records its values came from once, and each value points at one::

    {"rule": "priority",
     "from": [["crm", "r1", "2026-03-01T09:00:00.000000Z"], ["shop", "o7", "..."]],
     "values": {"email": ["a@example.org", 0], "city": ["Berlin", 1],
                "last_name": ["Roe", 2, "rectification"]}}

``from`` holds (source, record id, observed at) per contributing record; a value is
``[value, index into from]``, with a third element when its rule is not the document's (a
rectified value). A full resolution writes a golden record for every profile: one row per
profile instead of one per attribute is a seventh of the rows and less than half the bytes,
and the profile is read whole anyway.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import ColumnElement, Connection, delete, select

from custos.store import tables as t
from custos.store.tables import utc_text

if TYPE_CHECKING:
    from custos.store.base import Store


@dataclass(frozen=True, slots=True)
class GoldenValue:
    """A golden attribute with where it came from."""

    attribute: str
    value: str
    source: str
    record_id: str
    observed_at: datetime
    rule: str

    def as_dict(self) -> dict[str, str]:
        """The value with its provenance, for display and reports (the time in ISO 8601)."""
        return {**asdict(self), "observed_at": self.observed_at.isoformat()}


#: A record a document's values came from: (source, record id, observed at as :func:`utc_text`).
Origin = tuple[str, str, str]


def document(rule: str, origins: Sequence[Origin], values: Mapping[str, Sequence[Any]]) -> str:
    """The document of a golden record, the one place its format is written: ``values`` maps
    each attribute to ``(value, index into origins)``, or ``(value, index, rule)`` when its rule
    is not the document's."""
    doc = {"rule": rule, "from": origins, "values": values}
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()


def encode(values: Iterable[GoldenValue], rule: str | None = None) -> str:
    """The document of a golden record (``rule``: the document's rule, else the first value's)."""
    origins: list[Origin] = []
    index: dict[tuple[str, str, datetime], int] = {}
    out: dict[str, tuple[Any, ...]] = {}
    for v in values:
        rule = rule or v.rule
        key = (v.source, v.record_id, v.observed_at)
        at = index.get(key)
        if at is None:
            at = index[key] = len(origins)
            origins.append((v.source, v.record_id, utc_text(v.observed_at)))
        out[v.attribute] = (v.value, at) if v.rule == rule else (v.value, at, v.rule)
    return document(rule or "", origins, out)


def decode(document: str | bytes) -> list[GoldenValue]:
    """The golden values of a document, by attribute name (documents keep them sorted)."""
    doc = orjson.loads(document)
    rule = doc["rule"]
    sources = [(s, r, datetime.fromisoformat(at)) for s, r, at in doc["from"]]
    out = []
    for attribute, (value, at, *own) in doc["values"].items():
        source, record_id, observed_at = sources[at]
        out.append(
            GoldenValue(attribute, value, source, record_id, observed_at, own[0] if own else rule)
        )
    return out


def values(document: str | bytes) -> dict[str, str]:
    """attribute → value of a document, without the provenance (exports read millions)."""
    return {name: v[0] for name, v in orjson.loads(document)["values"].items()}


def values_with_source(document: str | bytes) -> dict[str, tuple[str, str]]:
    """attribute → (value, source) of a document."""
    doc = orjson.loads(document)
    sources = doc["from"]
    return {name: (v[0], sources[v[1]][0]) for name, v in doc["values"].items()}


def value_in_document(store: Store, attribute: str) -> ColumnElement[str]:
    """The value of ``attribute`` in ``profile_golden.document`` as a SQL expression (NULL when the
    record has none), so a filter on golden values runs in the database, not per document in
    Python."""
    return store.json_text(t.profile_golden.c.document, ("values", attribute, 0))


def read(conn: Connection, profile_ids: Sequence[str]) -> dict[str, list[GoldenValue]]:
    """The golden records of ``profile_ids`` (those that have one)."""
    out: dict[str, list[GoldenValue]] = {}
    for i in range(0, len(profile_ids), 500):
        chunk = list(profile_ids[i : i + 500])
        for pid, document in conn.execute(
            select(t.profile_golden.c.profile_id, t.profile_golden.c.document).where(
                t.profile_golden.c.profile_id.in_(chunk)
            )
        ):
            out[pid] = decode(document)
    return out


def read_one(conn: Connection, profile_id: str) -> list[GoldenValue]:
    """The golden record of one profile (empty if it has none)."""
    return read(conn, [profile_id]).get(profile_id, [])


def documents(conn: Connection, yield_per: int = 20_000) -> Generator[tuple[str, str]]:
    """Every (profile id, document), in profile id order, streamed."""
    query = select(t.profile_golden.c.profile_id, t.profile_golden.c.document).order_by(
        t.profile_golden.c.profile_id
    )
    with conn.execution_options(yield_per=yield_per).execute(query) as rows:  # closed if left
        yield from rows


def write(conn: Connection, profile_id: str, values: Sequence[GoldenValue]) -> None:
    """Replace one profile's golden record (none when ``values`` is empty)."""
    conn.execute(delete(t.profile_golden).where(t.profile_golden.c.profile_id == profile_id))
    if values:
        conn.execute(
            t.profile_golden.insert().values(profile_id=profile_id, document=encode(values))
        )
