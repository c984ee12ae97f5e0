"""Idempotency keys of consent events (``consent_events.event_key``): the same event, arriving
twice, is stored once.

Two forms are stored, and both stay as they are (a stored key must match the key of the same
event sent again): events from consent files are keyed by the source's name and the row's
values (:func:`file_event_key`); events recorded by the ledger (the API, collection, the
preference centre) by the source's id, the person and the decision (:func:`event_key`; the
ledger's ``event_key`` names its parts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

#: The values of a consent file's row that make up its key, in order.
FILE_KEY_FIELDS = (
    "email",
    "phone",
    "customer_id",
    "social_handle",
    "purpose",
    "status",
    "timestamp",
)


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def file_event_key(source: str, values: Mapping[str, Any]) -> str:
    """The key of a consent event read from a file of source ``source`` (its row's values)."""
    return _digest(
        [source]
        + [
            value.isoformat() if isinstance(value := values.get(k), datetime) else str(value)
            for k in FILE_KEY_FIELDS
        ]
    )


def event_key(
    source_id: int, person: str | None, decision: Sequence[str], ids: Mapping[str, str]
) -> str:
    """The key of one event the ledger records: the same decision (purpose, status, time as
    ISO text, method or "") of the same person (profile id, else the identifiers ``ids``), at
    the same time, from the same source, is one event."""
    return _digest(
        [str(source_id), person or "", *decision] + [f"{k}={ids[k]}" for k in sorted(ids)]
    )
