"""FastAPI dependencies: the custos instance of the app, and the authenticated key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from custos.api.auth import authenticate, key_from_headers
from custos.service.app import Custos
from custos.service.keys import ApiKey


class _Documented(HTTPBasic):
    """HTTP Basic as the OpenAPI document declares it; reads nothing (the header is read by
    key_from_headers, which answers a malformed one with custos's own 401)."""

    async def __call__(self, request: HTTPConnection) -> HTTPBasicCredentials | None:  # type: ignore[override]
        return None


# The security schemes of the OpenAPI document (the "Authorize" button of /docs). Either form
# carries any key; the key's scope decides what it may do.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerKey",
    description="An API key (custos keys create) as Bearer token: a read or admin key for the "
    "profile, review and data-subject routes (admin scope where a route says so), a write key "
    "for collection. On collection, a Bearer value that is no custos key next to a body "
    "writeKey is taken for a Segment OAuth access token: custos does not verify it, and the "
    "request has the rights of the body's write key only.",
)
basic = _Documented(
    auto_error=False,
    scheme_name="basicKey",
    description="HTTP Basic with the key as user name and an empty password (RudderStack's "
    "SDKs, older Segment clients).",
)


def _credentials(
    _: Annotated[object, Depends(bearer)], __: Annotated[object, Depends(basic)]
) -> None:
    """Declares both header forms of a key."""


Credentials = Annotated[None, Depends(_credentials)]


def custos_of(request: Request) -> Custos:
    """The custos instance the app serves."""
    found: Custos = request.app.state.custos
    return found


def read_key(request: Request, _: Credentials) -> ApiKey:
    """A key with read (or admin) scope."""
    return authenticate(custos_of(request), key_from_headers(request), "read")


def admin_key(request: Request, _: Credentials) -> ApiKey:
    """A key with admin scope."""
    return authenticate(custos_of(request), key_from_headers(request), "admin")


App = Annotated[Custos, Depends(custos_of)]
Reader = Annotated[ApiKey, Depends(read_key)]
Admin = Annotated[ApiKey, Depends(admin_key)]
