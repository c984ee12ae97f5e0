"""Authentication by API key (Bearer token or HTTP Basic with the key as user name) and the
purpose a read is served under (one of the key's purposes)."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from custos.api.errors import ApiError
from custos.service import keys
from custos.service.app import Custos
from custos.service.keys import ApiKey

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="custos", Basic realm="custos"'}


def key_from_headers(request: Request) -> str | None:
    """The key a request carries in its Authorization header (Bearer, or Basic user name)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.split(":", 1)[0] or None
    return None


def collection_key(custos: Custos, request: Request, body_key: object) -> ApiKey:
    """The write key of a collection request: the Authorization header's (Bearer, or Basic
    user name), else the body's ``writeKey``. Segment's OAuth form sends an access token as
    Bearer and the write key in the body: a Bearer value that is no custos key, next to a body
    ``writeKey``, is taken for such a token. custos does not verify it; the request is
    authenticated by the body's key alone and has only that key's rights."""
    given = key_from_headers(request)
    written = str(body_key) if body_key else None
    if (
        given
        and written
        and given != written
        and request.headers.get("authorization", "").partition(" ")[0].lower() == "bearer"
        and keys.verify(custos, given) is None
    ):
        given = None
    return authenticate(custos, given or written, "write")


def authenticate(custos: Custos, key: str | None, scope: str) -> ApiKey:
    """The key, if valid and allowed ``scope``; else 401 (wrong or missing) or 403 (scope)."""
    found = keys.verify(custos, key)
    if found is None:
        raise ApiError(
            401,
            "missing or invalid API key" if key else "an API key is required",
            hint="send Authorization: Bearer <key> (create one with custos keys create)",
            headers=CHALLENGE,
        )
    if not found.allows(scope):
        raise ApiError(
            403,
            f"key {found.name} has scope {found.scope}, which may not do this ({scope} needed)",
            hint=f"use a key created with --scope {scope}",
        )
    return found


def choose_purpose(key: ApiKey, asked: str | None) -> str:
    """The purpose a read is served under: the one asked for (it must be one of the key's), or
    the key's only purpose."""
    if asked:
        if asked not in key.purposes:
            raise ApiError(
                403,
                f"key {key.name} is not bound to purpose {asked}",
                hint=f"this key may read for: {', '.join(key.purposes) or 'no purpose'}",
            )
        return asked
    if len(key.purposes) == 1:
        return key.purposes[0]
    raise ApiError(
        403 if not key.purposes else 400,
        f"key {key.name} is bound to {len(key.purposes)} purposes: name one with ?purpose=",
        hint=f"one of: {', '.join(key.purposes) or 'none (create a key with --purpose)'}",
    )
