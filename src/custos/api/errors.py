"""Consistent error bodies for every failure: ``{"code", "message", "error": {"code",
"message", "hint"}}``. The top-level ``code`` and ``message`` are what the Segment and
RudderStack SDKs read from a refused request (their ``APIError``); ``error`` is custos's own
shape, with the fix in ``hint``.

Messages name ids and fields, never a person's values (custos errors are written that way).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custos.core.errors import (
    AccessDenied,
    ConfigError,
    CustosError,
    InputError,
    NotFoundError,
    StoreError,
)

log = logging.getLogger("custos.api")

#: custos error class → (HTTP status, code)
STATUS: list[tuple[type[CustosError], int, str]] = [
    (AccessDenied, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (InputError, 400, "bad_request"),
    (ConfigError, 400, "bad_request"),
    (StoreError, 503, "store_unavailable"),
]
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answered with ``status`` and the consistent body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.code = code or CODES.get(status, "error")
        self.headers = headers


def error_body(code: str, message: str, hint: str | None = None) -> dict[str, object]:
    """The body every error has."""
    return {
        "code": code,
        "message": message,
        "error": {"code": code, "message": message, "hint": hint},
    }


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the consistent body."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.hint), exc.status, headers=exc.headers
        )

    @app.exception_handler(CustosError)
    async def custos_error(_: Request, exc: CustosError) -> JSONResponse:
        for cls, status, code in STATUS:
            if isinstance(exc, cls):
                return JSONResponse(error_body(code, exc.message, exc.hint), status)
        return JSONResponse(error_body("error", exc.message, exc.hint), 400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(
                CODES.get(exc.status_code, "error"), str(exc.detail), getattr(exc, "hint", None)
            ),
            exc.status_code,
            headers=exc.headers,
        )

    app.add_middleware(Contain)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the fields and the bound they broke, never echo the values sent.
        where = sorted(
            {".".join(str(p) for p in e.get("loc", ())) + _bound(e) for e in exc.errors()}
        )
        return JSONResponse(
            error_body("invalid_request", f"invalid request: {', '.join(where)}"), 422
        )


#: pydantic's constraint (in an error's ctx) → how the message names it
BOUNDS = {"le": "at most", "lt": "below", "ge": "at least", "gt": "above"}


def _bound(error: Any) -> str:
    """`` (at most 1000000)`` for a value past a numeric or length bound, else nothing."""
    ctx = error.get("ctx") or {}
    for key, words in BOUNDS.items():
        if key in ctx:
            return f" ({words} {ctx[key]})"
    for key, words in (("max_length", "at most"), ("min_length", "at least")):
        if key in ctx:
            unit = "characters" if str(error.get("type", "")).startswith("string") else "items"
            return f" ({words} {ctx[key]} {unit})"
    return ""


class Contain:
    """Unexpected exceptions become the consistent 500 body, caught before the server's own
    handler would log the exception's message (a driver error can quote the row it failed on);
    only the type is logged. Plain ASGI, so a request pays no extra task or stream for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.error("unexpected %s while serving a request", type(exc).__name__)
            if started:  # the answer is half sent: the client sees a broken response
                return
            response = JSONResponse(
                error_body(
                    "internal",
                    "internal error: nothing of this request was stored",
                    "send it again; the store rolled back whole",
                ),
                500,
            )
            await response(scope, receive, send)
