"""Resource limits that act before authentication, on every route: the size of a request body,
the time a client has to send it, and how many bodies one client address may be sending at once
(:class:`Limits`); and the time a connection has to send a request's headers
(:class:`HeadTimeoutH11`, the protocol ``custos serve`` runs uvicorn with).

A refused request is answered with the consistent error body and ``Connection: close``: its body
is not read (or no further), so the connection cannot carry another request. A client address
whose bodies keep being refused as oversized or late (:class:`Penalties`) has its new
connections held unread for a while, then closed: answering each of a flood of such requests
would cost the server more than the well-behaved clients' calls.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from custos.api.errors import CODES, error_body
from custos.core.settings import Settings

CLOSE = {"Connection": "close"}


class BodyRefused(HTTPException):
    """A request body over its limit or late; raised from ``receive``, so the route stops reading
    and the exception handlers answer it."""

    def __init__(self, status: int, message: str, hint: str) -> None:
        super().__init__(status, message, CLOSE)
        self.hint = hint


class Penalties:
    """Client addresses that sent ``strikes`` oversized or late bodies within ``seconds``: each
    new connection of theirs is closed at once for ``seconds`` after the last strike (``seconds``
    0: never). A well-behaved client never earns a strike (its bodies are within the limits and
    sent at once). One table per server process, bounded: past ``size`` addresses it starts
    over."""

    def __init__(self, seconds: float = 10.0, strikes: int = 3, size: int = 65_536) -> None:
        self.seconds = seconds
        self.strikes = strikes
        self.size = size
        #: address → (strikes within the window, time of the last)
        self.table: dict[str, tuple[int, float]] = {}

    def strike(self, address: str) -> None:
        """Count one refused body of ``address``."""
        if not self.seconds or not address:
            return
        now = time.monotonic()
        count, last = self.table.get(address, (0, now))
        if now - last > self.seconds:
            count = 0
        if len(self.table) >= self.size and address not in self.table:
            self.table.clear()
        self.table[address] = (count + 1, now)

    def banned(self, address: str) -> bool:
        """Whether new connections of ``address`` are closed at once now."""
        found = self.table.get(address)
        if found is None:
            return False
        count, last = found
        if time.monotonic() - last > self.seconds:
            del self.table[address]
            return False
        return count >= self.strikes


#: The penalties of this server process (set up by :func:`custos.api.server.server_app`).
PENALTIES = Penalties()


class Limits:
    """Plain ASGI middleware: every request body is checked while it streams in, before the app
    (and so authentication, JSON parsing and the collection gate) sees it.

    - A declared ``Content-Length`` over the route's limit is answered 413 at once; a body sent
      without one (chunked) is cut and answered 413 as soon as it passes the limit.
    - The whole body must arrive within ``api_body_timeout`` seconds of the headers, else 408.
    - One client address may be sending at most ``api_max_uploads_per_client`` bodies at once
      (per server process); another is answered 429 without being read.
    """

    def __init__(self, app: ASGIApp, settings: Settings, collect_paths: frozenset[str]) -> None:
        self.app = app
        self.collect_paths = collect_paths
        self.collect_limit = settings.collect_max_batch_bytes
        self.limit = settings.api_max_body_bytes
        self.timeout = settings.api_body_timeout
        self.per_client = settings.api_max_uploads_per_client
        #: client address → bodies being received from it now
        self.uploads: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit():
                declared = int(value)
            elif name == b"content-length":  # not a number: counted as it streams
                chunked = True
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if not declared and not chunked:  # no body: nothing to limit
            await self.app(scope, receive, send)
            return
        limit = self.collect_limit if scope["path"] in self.collect_paths else self.limit
        client = scope["client"][0] if scope.get("client") else ""
        if declared is not None and declared > limit:
            PENALTIES.strike(client)
            await _refuse(scope, send, _too_large(limit))
            return
        if self.uploads.get(client, 0) >= self.per_client:
            await _refuse(
                scope,
                send,
                BodyRefused(
                    429,
                    f"more than {self.per_client} request bodies at once from one client",
                    "send fewer requests in parallel, or send each body at once",
                ),
            )
            return
        self.uploads[client] = self.uploads.get(client, 0) + 1
        reading = True
        received = 0
        deadline = asyncio.get_running_loop().time() + self.timeout

        def done() -> None:
            nonlocal reading
            if reading:
                reading = False
                left = self.uploads[client] - 1
                if left:
                    self.uploads[client] = left
                else:
                    del self.uploads[client]

        async def limited() -> Message:
            nonlocal received
            if not reading:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                done()
                PENALTIES.strike(client)
                raise BodyRefused(
                    408,
                    f"the request body did not arrive within {self.timeout:g} seconds",
                    "send the body at once; large batches may be split",
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    done()
                    PENALTIES.strike(client)
                    raise _too_large(limit)
                if message.get("more_body", False):
                    return message
            done()
            return message

        async def closing(message: Message) -> None:
            # Answered before the body is in (a route that does not read it, or a refusal):
            # the rest of the body would otherwise keep the connection busy.
            if message["type"] == "http.response.start" and reading:
                message = {**message, "headers": [*message["headers"], (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, limited, closing)
        finally:
            done()


def _too_large(limit: int) -> BodyRefused:
    return BodyRefused(
        413,
        f"the request body is larger than {limit} bytes",
        "send smaller requests (split a batch)",
    )


async def _refuse(scope: Scope, send: Send, refusal: BodyRefused) -> None:
    """Answer without calling the app (and so without reading the body)."""

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    headers = {**CLOSE, "Retry-After": "1"} if refusal.status_code == 429 else CLOSE
    response = JSONResponse(
        error_body(CODES[refusal.status_code], refusal.detail, refusal.hint),
        refusal.status_code,
        headers=headers,
    )
    await response(scope, nothing, send)


class HeadTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, which waits for a request's headers as long as the client likes,
    with a deadline: a connection that has not sent a whole request head ``seconds`` after it
    opened (or after the previous answer on it) is closed. uvicorn's own ``timeout_keep_alive``
    closes an idle kept-alive connection sooner; this also catches a new connection that sends
    nothing and headers sent a byte at a time."""

    #: set by :func:`custos.api.server.server_app` from ``api_header_timeout``
    seconds = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        """Open, and start the clock for the first request head. A penalised client address
        (see :class:`Penalties`) is held instead: nothing is read from the connection (so its
        sender stalls once the socket buffers are full, rather than connecting again and
        again) and it is closed, unanswered, when the penalty time is up."""
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        if peer and PENALTIES.banned(str(peer[0])):
            transport.pause_reading()
            self._head_timer = self.loop.call_later(PENALTIES.seconds, transport.abort)
            return
        self._expect_head(None)

    def on_response_complete(self) -> None:
        """Answered; start the clock for the next request head."""
        answered = self.cycle
        super().on_response_complete()  # may start a pipelined request at once
        self._expect_head(answered)

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed: stop the clock (a pending timer would keep the connection's buffers)."""
        super().connection_lost(exc)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expect_head(self, previous: Any) -> None:
        def check() -> None:
            # No new request since the clock started: its head is late (or never came).
            if self.cycle is previous and not self.transport.is_closing():
                self.transport.close()

        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.seconds, check)
