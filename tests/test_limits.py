"""Resource limits before authentication, each tested by performing the attack against a real
`custos serve` (its own process, so its memory can be measured): oversized bodies without a key,
slow bodies, slow and missing request heads; and bodies that used to answer 500."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from custos.api.app import create_app
from custos.core.settings import Settings
from custos.service import Custos, keys
from tests.conftest import start_serve

BODY_TIMEOUT = 2.0
HEAD_TIMEOUT = 4.0
#: The attackers' address: the well-behaved client uses 127.0.0.1 (the per-client cap counts
#: addresses, and every 127.x address reaches the loopback server).
ATTACKER = "127.0.0.2"


class Served:
    """A running `custos serve`: its port, process and write key."""

    def __init__(self, port: int, process: subprocess.Popen[bytes], key: str) -> None:
        self.port = port
        self.process = process
        self.key = key
        self.base = f"http://127.0.0.1:{port}"

    def rss_mb(self) -> float:
        """The server's resident memory now (VmRSS), in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def connect(self, source: str = "127.0.0.1") -> socket.socket:
        """A raw TCP connection to the server from ``source``."""
        sock = socket.create_connection(
            ("127.0.0.1", self.port), timeout=10, source_address=(source, 0)
        )
        return sock


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`custos serve` in its own process with short deadlines, and a write key; without
    penalties (each limit is tested on its own; see the penalty test)."""
    with _serve(tmp_path_factory, {"CUSTOS_API_PENALTY_SECONDS": "0"}) as served:
        yield served


@contextmanager
def _serve(tmp_path_factory: pytest.TempPathFactory, extra: dict[str, str]) -> Iterator[Served]:
    db = str(tmp_path_factory.mktemp("limits") / "limits.db")
    with Custos.open(db, Settings(_env_file=None, db=db)) as custos:  # type: ignore[call-arg]
        key = keys.create(custos, "web", [], "write")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "CUSTOS_API_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "CUSTOS_API_HEADER_TIMEOUT": str(HEAD_TIMEOUT),
        **extra,
    }
    process = start_serve(db, port, env)
    try:
        yield Served(port, process, key)
    finally:
        process.terminate()
        process.wait(10)


def head(path: str, port: int, *headers: str) -> bytes:
    """A request head, without a key."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read what the server sent until it closes: status, headers, body (status 0: nothing)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    if not data:
        return 0, {}, b""
    top, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {n.strip().lower(): v.strip() for n, _, v in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, body


def push(sock: socket.socket, total: int, chunked: bool) -> int:
    """Send up to ``total`` body bytes as fast as the server takes them; the bytes sent before
    the server cut the connection."""
    piece = b"x" * 65536
    if chunked:
        piece = b"%x\r\n" % len(piece) + piece + b"\r\n"
    sent = 0
    try:
        while sent < total:
            sock.sendall(piece)
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def test_keyless_oversized_bodies_are_refused_before_they_are_read(serve: Served) -> None:
    """200 MB bodies without a key, declared by Content-Length or chunked, on a collection route
    and an admin route: 413 at once (declared) or once the limit is passed (chunked), the
    connection cut, and the server's memory stays flat while four senders keep pushing."""
    collect_limit = Settings(_env_file=None).collect_max_batch_bytes  # type: ignore[call-arg]
    huge = 200 * 1024 * 1024
    # Declared: answered from the head alone; the body is never sent.
    for path in ("/v1/batch", "/v1/dsr/rectify"):
        with serve.connect() as sock:
            started = time.monotonic()
            sock.sendall(head(path, serve.port, f"Content-Length: {huge}"))
            status, headers, body = answer(sock)
        assert status == 413 and headers["connection"] == "close"
        assert orjson.loads(body)["error"]["code"] == "payload_too_large"
        assert time.monotonic() - started < 1.0
    # Chunked, no Content-Length: cut just past the limit; the 413 arrives.
    with serve.connect() as sock:
        sock.sendall(head("/v1/batch", serve.port, "Transfer-Encoding: chunked"))
        body_part = b"x" * (collect_limit + 100_000)
        sock.sendall(b"%x\r\n" % len(body_part) + body_part + b"\r\n")
        status, headers, _ = answer(sock)
    assert status == 413 and headers["connection"] == "close"
    # Four at once for two seconds, each pushing 200 MB bodies again and again (two declared,
    # two chunked): each time the server takes little more than socket buffers, and its memory
    # stays where it was.
    before = serve.rss_mb()

    def attack(chunked: bool) -> list[int]:
        pushed = []
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            with serve.connect(ATTACKER) as sock:
                length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {huge}"
                sock.sendall(head("/v1/batch", serve.port, length))
                pushed.append(push(sock, huge, chunked))
        return pushed

    with ThreadPoolExecutor(4) as pool:
        pushed = [n for each in pool.map(attack, [False, True, False, True]) for n in each]
    after = serve.rss_mb()
    assert len(pushed) > 20
    assert max(pushed) < 32 * 1024 * 1024  # cut early: kernel buffers, not the body
    # (A connection's buffers kept until its head deadline, as a timer left running once did,
    # grow it by about 40 MB here.)
    assert after - before < 20, (before, after)
    assert httpx.get(f"{serve.base}/health").status_code == 200


def test_slow_senders_hold_no_place_and_are_cut(serve: Served) -> None:
    """Sixteen connections trickle a body a byte at a time: one client address gets at most
    eight bodies in at once (the rest 429 at once), the collection gate is never held, so a
    well-behaved client's calls answer 200 meanwhile; the tricklers get 408 after the body
    deadline and are disconnected."""
    sockets = [serve.connect(ATTACKER) for _ in range(16)]
    results: list[tuple[float, int]] = [(0.0, 0)] * 16
    stop = threading.Event()
    started = time.monotonic()

    def trickle(i: int) -> None:
        sock = sockets[i]
        try:
            sock.sendall(head("/v1/track", serve.port, "Content-Length: 1000"))
            while not stop.is_set():
                sock.sendall(b" ")
                sock.settimeout(0.2)
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break  # answered
                except TimeoutError:
                    continue
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(10)
        results[i] = (time.monotonic() - started, answer(sock)[0])

    threads = [threading.Thread(target=trickle, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    fast: list[tuple[float, int]] = []
    with httpx.Client(base_url=serve.base) as client:
        auth = {"Authorization": f"Bearer {serve.key}"}
        for i in range(20):
            call = {"userId": "u-1", "event": "Viewed", "messageId": f"fast-{i}"}
            reply = client.post("/v1/track", json=call, headers=auth)
            fast.append((time.monotonic() - started, reply.status_code))
    for thread in threads:
        thread.join(BODY_TIMEOUT + 10)
    stop.set()
    for sock in sockets:
        sock.close()
    assert [status for _, status in fast] == [200] * 20
    statuses = sorted(status for _, status in results)
    assert statuses == [408] * 8 + [429] * 8
    cut = [when for when, status in results if status == 408]
    assert fast[-1][0] < min(cut)  # all answered while the slow bodies were still open
    assert all(BODY_TIMEOUT <= when < BODY_TIMEOUT + 3 for when in cut), cut


def test_idle_and_slow_head_connections_are_closed(serve: Served) -> None:
    """A connection that sends nothing, and one that sends its head a byte at a time, are
    closed after the head deadline."""
    text = head("/v1/track", serve.port, "Content-Length: 2")
    assert len(text) * 0.1 > HEAD_TIMEOUT + 2  # the head would take longer than the deadline
    slow_cut: list[float] = []

    def trickle(sock: socket.socket) -> None:
        try:
            for byte in text:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            slow_cut.append(time.monotonic() - started)

    with serve.connect(ATTACKER) as idle, serve.connect(ATTACKER) as slow:
        started = time.monotonic()
        thread = threading.Thread(target=trickle, args=(slow,))
        thread.start()
        idle.settimeout(HEAD_TIMEOUT + 5)
        assert idle.recv(1) == b""  # closed by the server
        closed_idle = time.monotonic() - started
        thread.join()
    assert HEAD_TIMEOUT - 0.5 <= closed_idle < HEAD_TIMEOUT + 1.5
    assert slow_cut and HEAD_TIMEOUT - 0.5 <= slow_cut[0] < HEAD_TIMEOUT + 1.5, slow_cut


def test_deep_and_long_calls_answer_400_naming_the_problem(serve: Served) -> None:
    """A 1000-deep JSON array and fields over the schema's limits answer 400 (the field
    named, the value never echoed), not 500."""
    auth = {"Authorization": f"Bearer {serve.key}"}
    deep = b'{"userId": "u", "event": "E", "properties": {"x": ' + b"[" * 1000 + b"]" * 1000
    reply = httpx.post(f"{serve.base}/v1/track", content=deep + b"}}", headers=auth)
    assert reply.status_code == 400 and "nested too deeply" in reply.json()["error"]["message"]
    for field in ("userId", "anonymousId", "event", "name", "groupId", "previousId"):
        call = {"userId": "u", "event": "E", field: "z" * 201}
        reply = httpx.post(f"{serve.base}/v1/track", json=call, headers=auth)
        error = reply.json()["error"]
        assert reply.status_code == 400, field
        assert error["message"] == f"{field} is longer than 200 characters"
        assert "zzz" not in reply.text
    batch = {"batch": [{"type": "track", "userId": "u", "event": "E"}, {"userId": "u" * 300}]}
    reply = httpx.post(f"{serve.base}/v1/batch", json=batch, headers=auth)
    assert reply.status_code == 400
    assert reply.json()["error"]["message"] == "userId of call 1 is longer than 200 characters"
    fine = {"userId": "u" * 200, "event": "E", "messageId": "m" * 200}
    assert httpx.post(f"{serve.base}/v1/track", json=fine, headers=auth).status_code == 200
    # a message id has no limit of its own (a long one is stored as its digest, issue 15)
    long = {"userId": "u", "event": "E", "messageId": "m" * 5000}
    assert httpx.post(f"{serve.base}/v1/track", json=long, headers=auth).status_code == 200


def test_limits_hold_on_every_route_in_process(tmp_path: Path) -> None:
    """The body limit covers routes with pydantic bodies (413 before parsing or the key
    check), and such a route's deep JSON answers 4xx; a body within the limits is served."""
    settings = Settings(_env_file=None, db="unused")  # type: ignore[call-arg]
    with Custos.open(str(tmp_path / "c.db"), settings) as custos:
        client = TestClient(create_app(custos))
        admin = keys.create(custos, "admin", ["customer_service"], "admin")
        too_big = b'{"key": "' + b"a" * 70_000 + b'"}'
        reply = client.post("/v1/dsr/access", content=too_big)
        assert reply.status_code == 413 and reply.json()["error"]["code"] == "payload_too_large"
        auth = {"Authorization": f"Bearer {admin}"}
        deep = b'{"key": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        assert client.post("/v1/dsr/access", content=deep, headers=auth).status_code in (400, 422)
        unknown = client.post("/v1/dsr/access", json={"key": "nobody@example.com"}, headers=auth)
        assert unknown.status_code < 500


def test_an_address_that_keeps_sending_oversized_bodies_is_cut_off_for_a_while(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Three oversized bodies from one address within the penalty time: its next connections
    are closed at once, before a byte is parsed (answering a flood costs more than the
    well-behaved clients' calls); other addresses are served; after the penalty time it is
    answered again."""
    huge = 200 * 1024 * 1024
    with _serve(tmp_path_factory, {"CUSTOS_API_PENALTY_SECONDS": "1.5"}) as served:
        for _ in range(3):
            with served.connect(ATTACKER) as sock:
                sock.sendall(head("/v1/batch", served.port, f"Content-Length: {huge}"))
                assert answer(sock)[0] == 413
        with served.connect(ATTACKER) as sock:
            with suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(head("/v1/batch", served.port, f"Content-Length: {huge}"))
            assert answer(sock)[0] == 0  # closed unanswered
        call = {"writeKey": served.key, "userId": "u", "event": "E", "messageId": "p-1"}
        assert httpx.post(f"{served.base}/v1/track", json=call).status_code == 200
        time.sleep(1.6)
        with served.connect(ATTACKER) as sock:
            sock.sendall(head("/v1/batch", served.port, f"Content-Length: {huge}"))
            assert answer(sock)[0] == 413
