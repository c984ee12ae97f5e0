"""The release register: one row per de-identified release written, with the persons it let out
and those it suppressed (profile ids, compressed), read back by the next release of the purpose.
A release is ``rows`` (a k-anonymous extract) or ``aggregate`` (noisy counts, with the ε it
spent of the purpose's privacy budget)."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select

from custos.store import tables as t


@dataclass(frozen=True)
class Entry:
    """One release in the register."""

    id: str
    purpose: str
    created_at: datetime
    actor: str
    linkable: bool
    quasi_identifiers: tuple[str, ...]
    sensitive: tuple[str, ...]
    #: column → {"operator": name, "level": int, "shown": description}
    generalisation: dict[str, dict[str, Any]]
    k: int
    l: int  # noqa: E741 - the name of the measure
    reference_date: str
    persons: frozenset[str]
    suppressed: frozenset[str]
    kind: str = "rows"
    epsilon: float | None = None

    def level(self, column: str) -> int:
        """The generalisation level ``column`` was released at."""
        return int(self.generalisation[column]["level"])

    def summary(self) -> dict[str, Any]:
        """The entry without person ids (counts only), for listings."""
        return {
            "release": self.id,
            "purpose": self.purpose,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "actor": self.actor,
            "pseudonyms": "linkable per purpose" if self.linkable else "per release",
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": list(self.sensitive),
            "generalisation": {c: g["shown"] for c, g in self.generalisation.items()},
            "k": self.k,
            "l": self.l,
            "reference_date": self.reference_date,
            "persons": len(self.persons),
            "suppressed_persons": len(self.suppressed),
            "kind": self.kind,
            "epsilon": self.epsilon,
        }


def _pack(ids: Sequence[str]) -> str:
    return base64.b64encode(zlib.compress("\n".join(sorted(ids)).encode(), 1)).decode()


def _unpack(text: str) -> frozenset[str]:
    return frozenset(p for p in zlib.decompress(base64.b64decode(text)).decode().split("\n") if p)


def add(conn: Connection, entry: Entry) -> None:
    """Register a release that was written."""
    conn.execute(
        insert(t.releases).values(
            id=entry.id,
            purpose=entry.purpose,
            created_at=entry.created_at,
            actor=entry.actor,
            linkable=entry.linkable,
            quasi_identifiers=orjson.dumps(list(entry.quasi_identifiers)).decode(),
            sensitive=orjson.dumps(list(entry.sensitive)).decode(),
            generalisation=orjson.dumps(entry.generalisation).decode(),
            k=entry.k,
            l=entry.l,
            reference_date=entry.reference_date,
            persons=len(entry.persons),
            suppressed=len(entry.suppressed),
            persons_z=_pack(sorted(entry.persons)),
            suppressed_z=_pack(sorted(entry.suppressed)),
            kind=entry.kind,
            epsilon=entry.epsilon,
        )
    )


def entries(conn: Connection, purpose: str | None = None, kind: str | None = "rows") -> list[Entry]:
    """The register (of one purpose; of one ``kind``, None: all), oldest first."""
    query = select(t.releases).order_by(t.releases.c.created_at, t.releases.c.id)
    if purpose is not None:
        query = query.where(t.releases.c.purpose == purpose)
    if kind is not None:
        query = query.where(t.releases.c.kind == kind)
    return [
        Entry(
            id=row.id,
            purpose=row.purpose,
            created_at=row.created_at,
            actor=row.actor,
            linkable=bool(row.linkable),
            quasi_identifiers=tuple(orjson.loads(row.quasi_identifiers)),
            sensitive=tuple(orjson.loads(row.sensitive)),
            generalisation=orjson.loads(row.generalisation),
            k=row.k,
            l=row.l,
            reference_date=row.reference_date,
            persons=_unpack(row.persons_z),
            suppressed=_unpack(row.suppressed_z),
            kind=row.kind,
            epsilon=row.epsilon,
        )
        for row in conn.execute(query)
    ]


def epsilon_spent(conn: Connection, purpose: str) -> float:
    """The ε the purpose's aggregate releases have spent of its privacy budget."""
    query = select(func.coalesce(func.sum(t.releases.c.epsilon), 0.0)).where(
        t.releases.c.purpose == purpose, t.releases.c.kind == "aggregate"
    )
    return float(conn.execute(query).scalar_one())
