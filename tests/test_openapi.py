"""The errors carry what the SDKs read: a real ``custos serve``, driven by the real RudderStack
client."""

from __future__ import annotations

import queue
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from rudderstack.analytics import request as rudder_request
from rudderstack.analytics.consumer import Consumer as RudderConsumer

from custos.core.settings import Settings
from custos.service import Custos, keys
from tests.conftest import start_serve

#: the collection size limit of the test server (bytes, unzipped too)
LIMIT = 20_000


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real ``custos serve`` with a write key and a read key; its URL, keys and database."""
    db = str(tmp_path_factory.mktemp("openapi") / "api.db")
    with Custos.open(db, Settings(_env_file=None, db="unused")) as custos:  # type: ignore[call-arg]
        write = keys.create(custos, "web", [], "write")
        read = keys.create(custos, "desk", ["customer_service"], "read")
    port = _port()
    process = start_serve(db, port, {"CUSTOS_COLLECT_MAX_BATCH_BYTES": str(LIMIT)})
    try:
        yield {"url": f"http://127.0.0.1:{port}", "write": write, "read": read, "db": db}
    finally:
        process.terminate()
        process.wait(10)


def stored(db: str) -> list[tuple[str, str]]:
    """(source, record id) of every collected call in the store."""
    with Custos.open(db, Settings(_env_file=None, db="unused")) as custos:  # type: ignore[call-arg]
        return [(source, record) for source, record, _ in custos.xref()]


def test_rudderstack_client_reads_the_error_and_does_not_retry_it(
    serve: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    post = rudder_request._session.post

    def counted(*args: Any, **kwargs: Any) -> Any:
        sent.append(1)
        return post(*args, **kwargs)

    monkeypatch.setattr(rudder_request._session, "post", counted)
    call = {"type": "track", "userId": "u-1", "event": "Viewed", "messageId": "rs-1"}
    # The SDK's consumer gives up on a 4xx other than 429 only when it is its APIError: a body
    # without top-level code and message raised KeyError, which it retried like a network error.
    wrong = RudderConsumer(queue.Queue(), "not-a-key", host=serve["url"], retries=5)
    with pytest.raises(rudder_request.APIError) as refused:
        wrong.request([call])
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert "API key" in refused.value.message
    assert sent == [1]
    # Over the size limit (gzip, as the SDK sends it: refused once unzipped)
    big = RudderConsumer(queue.Queue(), serve["write"], host=serve["url"], retries=5)
    with pytest.raises(rudder_request.APIError) as too_large:
        big.request([{**call, "properties": {"text": "x" * LIMIT}}])
    assert (too_large.value.status, too_large.value.code) == (413, "payload_too_large")
    assert sent == [1, 1]
    assert stored(serve["db"]) == []
