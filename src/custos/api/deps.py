"""FastAPI dependencies: the custos instance of the app, and the authenticated key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from custos.api.auth import authenticate, key_from_headers
from custos.service.app import Custos
from custos.service.keys import ApiKey

# Declared for the OpenAPI document (the "Authorize" button of /docs); the header is read by
# key_from_headers, which also takes HTTP Basic.
bearer = HTTPBearer(auto_error=False, description="An API key: custos keys create")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


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
