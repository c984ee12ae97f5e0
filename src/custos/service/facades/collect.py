"""``custos.collect``: Segment-compatible collection (track, identify, page, … calls) stored
in one write transaction per batch of requests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from custos.service import collect
from custos.service.collect import CollectRequest, CollectResult
from custos.service.facades.base import Facade


class CollectFacade(Facade):
    """Collection: ``custos.collect.calls([...], source=…)``, ``.many(requests)``."""

    def calls(
        self,
        calls: list[tuple[str, dict[str, Any]]],
        *,
        source: str,
        received_at: datetime | None = None,
        sent_at: Any = None,
        headers: Mapping[str, str] | None = None,
        verified: bool = False,
    ) -> CollectResult:
        """Store collected calls ``(type, message)`` of ``source`` in one write transaction
        (``verified``: they come from a server-side key; otherwise they may restrict consent,
        never grant it)."""
        return collect.collect(
            self._app,
            calls,
            source=source,
            received_at=received_at or datetime.now(UTC),
            sent_at=sent_at,
            headers=headers,
            verified=verified,
        )

    def many(self, requests: list[CollectRequest]) -> list[CollectResult]:
        """Store the calls of several requests in one write transaction (group commit): all
        commit together or none does."""
        return collect.collect_many(self._app, requests)
