"""Suppression of erased persons: keyed hashes of their identifiers, and the check ingestion runs.

An entry is ``(kind, HMAC(key, "suppress:<kind>" + value))`` — never the value. Kinds: the strong
identifiers (``email``, ``phone``, ``customer_id``, ``social_handle``, normalised), ``record``
(source and record id of a row as received) and ``person`` (first and last name key with the
date of birth). A later import of a row that carries any of them is quarantined ("suppressed by an erasure
request") with no values: :class:`Suppressor` is the check the ingestion pipeline runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from custos.core.errors import ConfigError
from custos.core.fields import STRONG_IDENTIFIERS
from custos.privacy.deid.pseudonym import keyed_hash
from custos.privacy.keys import FINGERPRINT_META, fingerprint
from custos.store import meta
from custos.store import tables as t

RECORD, PERSON = "record", "person"
KINDS = (*STRONG_IDENTIFIERS, RECORD, PERSON)

#: Turns the text of a row that could not be normalised into (kind, normalised value) candidates.
Forms = Callable[[str], Iterable[tuple[str, str]]]


def digest(key: bytes, kind: str, value: str) -> str:
    """The keyed hash stored for an identifier."""
    return keyed_hash(key, f"suppress:{kind}", value)


def record_value(source: str, record_id: str) -> str:
    """The value behind a ``record`` entry."""
    return f"{source}\x1f{record_id}"


def person_value(first_key: str, last_key: str, date_of_birth: str) -> str:
    """The value behind a ``person`` entry."""
    return f"{first_key}\x1f{last_key}\x1f{date_of_birth}"


def add(
    conn: Connection, key: bytes, values: Iterable[tuple[str, str]], *, request_id: int
) -> dict[str, int]:
    """Store the entries for these (kind, value) pairs (inside the caller's write transaction);
    returns how many of each kind are new. Remembers the key's fingerprint on first use."""
    check_key(conn, key, remember=True)
    entries = t.suppressions
    wanted = {(kind, digest(key, kind, value)) for kind, value in values if value}
    existing = set(
        conn.execute(
            select(entries.c.kind, entries.c.digest).where(
                entries.c.digest.in_([d for _, d in wanted])
            )
        ).all()
    )
    fresh = sorted(wanted - existing)
    now = datetime.now(UTC)
    if fresh:
        conn.execute(
            entries.insert(),
            [
                {"kind": kind, "digest": d, "request_id": request_id, "created_at": now}
                for kind, d in fresh
            ],
        )
    counts: dict[str, int] = {}
    for kind, _ in fresh:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def check_key(conn: Connection, key: bytes, *, remember: bool = False) -> None:
    """Refuse a key other than the one the suppression list was made with."""
    known = meta.get(conn, FINGERPRINT_META)
    mine = fingerprint(key)
    if known is None:
        if remember:
            meta.put(conn, FINGERPRINT_META, mine)
        return
    if known != mine:
        raise ConfigError(
            "the secret key is not the one the suppression list of erased persons was made with",
            hint="point CUSTOS_SECRET_KEY_FILE at the original key file",
        )


def count(conn: Connection) -> int:
    """How many suppression entries the store holds."""
    return int(conn.execute(select(func.count()).select_from(t.suppressions)).scalar_one())


def load(conn: Connection) -> frozenset[str]:
    """Every entry as ``kind:digest``."""
    entries = t.suppressions
    return frozenset(
        f"{kind}:{d}" for kind, d in conn.execute(select(entries.c.kind, entries.c.digest))
    )


@dataclass(frozen=True)
class Suppressor:
    """The check ingestion runs on every row while the store holds suppression entries.

    Picklable and free of connections, so it travels into forked ingestion workers as it is.
    """

    key: bytes
    entries: frozenset[str]
    forms: Forms | None = None

    def __call__(
        self,
        source: str,
        record_id: str | None,
        fields: Mapping[str, Any] | None,
        raw: str,
    ) -> str | None:
        """None to store the row; else an opaque keyed hash of the row (its quarantine key).

        ``fields`` are the normalised values of a row that normalised; for a row that did not,
        None, and the identifiers are looked for in ``raw``.
        """
        candidates: list[tuple[str, str]] = []
        if record_id:
            candidates.append((RECORD, record_value(source, record_id)))
        if fields is not None:
            candidates.extend((k, fields[k]) for k in STRONG_IDENTIFIERS if fields.get(k))
            first, last = fields.get("first_name_key"), fields.get("last_name_key")
            born = fields.get("date_of_birth")
            if first and last and born:
                candidates.append((PERSON, person_value(first, last, born)))
        elif self.forms is not None and raw:
            candidates.extend(self.forms(raw))
        for kind, value in candidates:
            if f"{kind}:{digest(self.key, kind, value)}" in self.entries:
                return keyed_hash(self.key, "suppressed-row", f"{source}\x1f{record_id}\x1f{raw}")
        return None
