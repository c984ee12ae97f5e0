"""Consistent error bodies for every failure: ``{"code", "message", "error": {"code",
"message", "hint"}}``. The top-level ``code`` and ``message`` are what the Segment and
RudderStack SDKs read from a refused request (their ``APIError``); ``error`` is custos's own
shape, with the fix in ``hint``. :func:`responses` documents them in the OpenAPI document.

Messages name ids and fields, never a person's values (custos errors are written that way).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
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
    """The body every error has (see :class:`ErrorBody`)."""
    return {
        "code": code,
        "message": message,
        "error": {"code": code, "message": message, "hint": hint},
    }


class ErrorDetail(BaseModel):
    """What went wrong and how to fix it."""

    code: str = Field(description="A stable short code: bad_request, payload_too_large, …")
    message: str = Field(description="What went wrong (ids and fields, never a person's values).")
    hint: str | None = Field(description="How to fix it, when custos knows.")


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    code: str = Field(description="As error.code (read by the Segment and RudderStack SDKs).")
    message: str = Field(description="As error.message (read by the SDKs).")
    error: ErrorDetail


#: status → when the API answers it (the OpenAPI description)
WHEN = {
    304: "The client's copy (If-None-Match) is current.",
    400: "The request is wrong: the message names the field and the fix.",
    401: "The key is missing, wrong or revoked.",
    403: "The key's scope or purposes do not allow this.",
    404: "Nothing with this id.",
    408: "The request body did not arrive in time (api_body_timeout).",
    413: "The request body is over the route's size limit (before authentication).",
    422: "A parameter or a field of the body is missing or out of bounds (named, never echoed).",
    429: "Too many requests at once (from this client, or collection requests in all).",
    500: "An unexpected error: nothing of the request was stored.",
    503: "The store is unavailable, or the server process holds api_max_connections already "
    "(that answer is uvicorn's, in plain text).",
}
#: the headers an error status always carries
HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The schemes: Bearer and Basic.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}
#: What every route may answer: the limits that act before the app (408, 413, 429), an
#: unexpected error (500) and an unavailable store (503).
COMMON = (408, 413, 429, 500, 503)


def answers(model: type[BaseModel] | None, *statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of a route: 200 with ``model`` (a route that returns a dict
    declares ``response_model=None``, so the model documents the body and changes nothing of
    it), and these error statuses."""
    ok: dict[int | str, dict[str, Any]] = {200: {"model": model}} if model else {}
    return {**ok, **responses(*statuses)}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of these statuses: each with :class:`ErrorBody` (304: no body)."""
    found: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        if status == 304:
            found[status] = {"description": WHEN[status]}
            continue
        found[status] = {"model": ErrorBody, "description": WHEN[status]}
        if status == 503:
            found[status]["content"] = {"text/plain": {"schema": {"type": "string"}}}
        if status in HEADERS:
            found[status]["headers"] = HEADERS[status]
    return found


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
