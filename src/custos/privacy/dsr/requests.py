"""Tracked data-subject requests: kind, subject (a profile id), state and steps.

A request is created with its steps pending; each step is marked done (with what it did: ids and
counts, never a value of the person) or failed (with the error's type), so running the request
again continues where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select, update

from custos.core.errors import NotFoundError
from custos.store import tables as t

KINDS = ("access", "export", "rectify", "restrict", "erase")
OPEN, DONE, FAILED = "open", "done", "failed"
PENDING = "pending"


@dataclass
class Step:
    """One step of a request."""

    name: str
    state: str = PENDING
    at: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The step as stored (JSON)."""
        return {"name": self.name, "state": self.state, "at": self.at, "detail": self.detail}


@dataclass
class Request:
    """A data-subject request and the state of each of its steps."""

    id: int
    kind: str
    profile_id: str
    state: str
    steps: list[Step]
    result: dict[str, Any]
    actor: str
    created_at: datetime
    updated_at: datetime

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def ref(self) -> str:
        """How people refer to the request: ``dsr-12``."""
        return f"dsr-{self.id}"

    def as_dict(self) -> dict[str, Any]:
        """The request for display and JSON output (ids and counts only)."""
        return {
            "request": self.ref,
            "kind": self.kind,
            "profile_id": self.profile_id,
            "state": self.state,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "steps": [s.as_dict() for s in self.steps],
            "result": self.result,
        }


def parse_ref(ref: str) -> int:
    """The id of a request from ``dsr-12`` or ``12``."""
    text = ref.strip().lower().removeprefix("dsr-")
    if not text.isdigit():
        raise NotFoundError(f"not a request reference: {ref!r}", hint="write dsr-12 or 12")
    return int(text)


def create(
    conn: Connection,
    kind: str,
    profile_id: str,
    steps: list[str],
    *,
    actor: str,
    result: dict[str, Any] | None = None,
) -> Request:
    """A new open request with these steps pending (inside the caller's write transaction);
    ``result`` holds what a resumed run needs (an output folder), never personal values."""
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}")
    now = datetime.now(UTC)
    pending = [Step(name) for name in steps]
    inserted = conn.execute(
        t.dsr_requests.insert().values(
            kind=kind,
            profile_id=profile_id,
            state=OPEN,
            steps=_dumps([s.as_dict() for s in pending]),
            result=_dumps(result or {}),
            actor=actor,
            created_at=now,
            updated_at=now,
        )
    )
    request_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
    return Request(request_id, kind, profile_id, OPEN, pending, result or {}, actor, now, now)


def load(conn: Connection, request_id: int) -> Request:
    """The request with this id."""
    row = conn.execute(select(t.dsr_requests).where(t.dsr_requests.c.id == request_id)).first()
    if row is None:
        raise NotFoundError(f"no request dsr-{request_id}", hint="see `custos dsr list`")
    return _request(row)


def listing(
    conn: Connection, *, profile_ids: list[str] | None = None, limit: int = 100
) -> list[Request]:
    """Requests, newest first (optionally those about some profile ids)."""
    query = select(t.dsr_requests).order_by(t.dsr_requests.c.id.desc()).limit(limit)
    if profile_ids is not None:
        query = query.where(t.dsr_requests.c.profile_id.in_(profile_ids))
    return [_request(row) for row in conn.execute(query)]


def save(conn: Connection, request: Request) -> None:
    """Write the request's state, steps and result (inside the caller's write transaction)."""
    if all(s.state == DONE for s in request.steps):
        request.state = DONE
    elif any(s.state == FAILED for s in request.steps):
        request.state = FAILED
    else:
        request.state = OPEN
    request.updated_at = datetime.now(UTC)
    conn.execute(
        update(t.dsr_requests)
        .where(t.dsr_requests.c.id == request.id)
        .values(
            state=request.state,
            steps=_dumps([s.as_dict() for s in request.steps]),
            result=_dumps(request.result),
            updated_at=request.updated_at,
        )
    )


def mark(step: Step, state: str, detail: dict[str, Any] | None = None) -> None:
    """Set a step's state (and what it did), stamped with the time."""
    step.state = state
    step.at = datetime.now(UTC).isoformat()
    if detail is not None:
        step.detail = detail


def _request(row: Any) -> Request:
    return Request(
        id=int(row.id),
        kind=row.kind,
        profile_id=row.profile_id,
        state=row.state,
        steps=[Step(**s) for s in orjson.loads(row.steps)],
        result=orjson.loads(row.result or "{}"),
        actor=row.actor,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
