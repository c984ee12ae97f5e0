"""The OpenAPI document declares what each route answers, and the errors carry what the SDKs
read: a real ``custos serve``, driven by the real RudderStack and Segment clients (Segment's in
its OAuth form, against a local token server)."""

from __future__ import annotations

import json
import queue
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rudderstack.analytics import request as rudder_request
from rudderstack.analytics.consumer import Consumer as RudderConsumer
from segment.analytics import Client as SegmentClient
from segment.analytics.request import APIError as SegmentAPIError

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


def test_the_document_declares_errors_auth_and_bodies(serve: dict[str, str]) -> None:
    document = httpx.get(f"{serve['url']}/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message", "error"}
    assert "HTTPValidationError" not in schemas  # 422 answers the API's own error body
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"]["scheme"] == "bearer"
    assert schemes["basicKey"]["scheme"] == "basic"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            assert "200" in answers, (method, path)
            for status in ("408", "413", "429", "500", "503"):  # limits before the app, and more
                body = answers[status]["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            assert answers["429"]["headers"]["Retry-After"]["required"] is True
            if path != "/health":
                assert "401" in answers and "403" in answers, (method, path)
                assert "WWW-Authenticate" in answers["401"]["headers"]
    track = document["paths"]["/v1/track"]["post"]
    # the three forms: Bearer, Basic, or no header (the body's writeKey)
    assert track["security"] == [{"bearerKey": []}, {"basicKey": []}, {}]
    assert "writeKey" in track["description"] and "OAuth" in track["description"]
    collected = schemas["Collected"]
    assert collected["additionalProperties"] is True  # another field may come
    assert {"success", "received", "stored", "duplicates", "quarantined", "consent_events"} <= set(
        collected["required"]
    )
    assert httpx.get(f"{serve['url']}/docs").status_code == 200


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


def test_segment_client_reads_the_error(serve: dict[str, str]) -> None:
    client = SegmentClient("not-a-key", host=serve["url"], sync_mode=True)
    with pytest.raises(SegmentAPIError) as refused:
        client.track("u-1", "Viewed", message_id="seg-1")
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")  # was "unknown"
    assert refused.value.message == "missing or invalid API key"


class _TokenServer(BaseHTTPRequestHandler):
    """Segment's OAuth token endpoint, as far as the SDK needs it."""

    requests: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.requests.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        body = json.dumps({"access_token": "segment-oauth-token", "expires_in": 3600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_segment_oauth_form_is_accepted_with_the_write_keys_rights(
    serve: dict[str, str], tmp_path: Path
) -> None:
    tokens = HTTPServer(("127.0.0.1", 0), _TokenServer)
    threading.Thread(target=tokens.serve_forever, daemon=True).start()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    try:
        client = SegmentClient(
            serve["write"],
            host=serve["url"],
            sync_mode=True,
            oauth_client_id="custos-test",
            oauth_client_key=pem,
            oauth_key_id="k1",
            oauth_auth_server=f"http://127.0.0.1:{tokens.server_port}",
        )
        # Sent as Authorization: Bearer segment-oauth-token, the write key in the body.
        client.track("u-1", "Signed Up", message_id="oauth-1")
    finally:
        tokens.shutdown()
        tokens.server_close()
    assert _TokenServer.requests and "client_assertion=" in _TokenServer.requests[0]
    assert ("web", "oauth-1") in stored(serve["db"])
    url = f"{serve['url']}/v1/track"
    call = {"userId": "u-1", "event": "E", "messageId": "oauth-2"}
    oauth = {"Authorization": "Bearer segment-oauth-token"}
    # The token is not verified: without a valid write key in the body nothing is let in.
    assert httpx.post(url, json={**call, "writeKey": "wrong"}, headers=oauth).status_code == 401
    assert httpx.post(url, json=call, headers=oauth).status_code == 401
    # A Bearer value that is a custos key is that key, whatever the body says.
    as_reader = {"Authorization": f"Bearer {serve['read']}"}
    refused = httpx.post(url, json={**call, "writeKey": serve["write"]}, headers=as_reader)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert ("web", "oauth-2") not in stored(serve["db"])
