"""API keys: created once (the key is shown once, only its SHA-256 hash is kept), bound to a scope
and to the purposes its reads are served under; verified in constant time; revocable.

Scopes: ``read`` (profile reads under the key's purposes), ``write`` (the collection API from
web pages and apps: the key is public, so what its calls assert about a person is a claim; the
key's name is the source its events are stored under), ``server`` (the collection API from the
site's own servers: the key is kept secret, so its calls are verified) and ``admin`` (reads,
and merge/unmerge).

Identity verification: a site's server signs the user id of a browser's ``identify`` with the
write key's *identity secret* (:func:`identity_secret`, derived from ``CUSTOS_SECRET_KEY_FILE``
and the key's name); such a call is verified for that user id (:func:`signed`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select

from custos.core.errors import ConfigError, NotFoundError
from custos.core.fields import Kind
from custos.core.keys import load_or_create_key
from custos.ingest.pipeline import ensure_source
from custos.store import audit
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos

PREFIX = "ck_live_"
SCOPES = ("read", "write", "server", "admin")
#: The scopes that may collect; calls of the ``server`` scope are verified.
COLLECT_SCOPES = ("write", "server")
#: What a collected call's user id is, a setting of the key's source: ``customer_id`` (the
#: default: the customer number, the field a CRM's map names its customer number, so the call
#: meets that customer's record) or ``none`` (an id of the app's own that is no customer number:
#: kept with the call, ``extra.segment.user_id``, but never compared with customer numbers).
#: ``external_id`` is taken as ``customer_id`` (the external id custos keeps as customer_id).
USER_ID_FIELDS = ("customer_id", "none")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A verified key: its name (the actor in the audit log), scope and purposes."""

    id: int
    name: str
    scope: str
    purposes: tuple[str, ...]
    #: what the user id of its collected calls is (:data:`USER_ID_FIELDS`)
    user_id_field: str = "customer_id"

    def allows(self, scope: str) -> bool:
        """May this key do what ``scope`` needs? (admin may read; write and server only
        collect.)"""
        return (
            self.scope == scope
            or (self.scope == "admin" and scope == "read")
            or (self.scope == "server" and scope == "write")
        )

    @property
    def verified(self) -> bool:
        """Whether what this key's collection calls assert is verified (a server-side key)."""
        return self.scope == "server"


def key_hash(key: str) -> str:
    """The stored form of a key: hex SHA-256 (keys are 256-bit random, so no salt is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def create(
    app: Custos,
    name: str,
    purposes: list[str],
    scope: str = "read",
    *,
    user_id_field: str | None = None,
    actor: str = "cli",
) -> str:
    """Create a key and return it (the only time it is seen; only its hash is stored). A
    collection key's ``user_id_field`` (:data:`USER_ID_FIELDS`) is kept with its source."""
    if scope not in SCOPES:
        raise ConfigError(f"unknown scope {scope!r}", hint=f"use one of {', '.join(SCOPES)}")
    # custos calls a customer number from another system, the external id, customer_id
    if user_id_field == "external_id":
        user_id_field = "customer_id"
    _check_user_id_field(scope, user_id_field)
    if not name or len(name) > 200:
        raise ConfigError("a key needs a name of 1 to 200 characters")
    for purpose in purposes:
        app.taxonomy.purpose(purpose)  # unknown purposes are refused
    if scope not in COLLECT_SCOPES and not purposes:
        raise ConfigError(
            f"a {scope} key needs at least one purpose", hint="pass --purpose P (repeatable)"
        )
    key = PREFIX + secrets.token_urlsafe(32)
    with app.store.write() as conn:
        if conn.execute(select(t.api_keys.c.id).where(t.api_keys.c.name == name)).first():
            raise ConfigError(f"a key named {name!r} exists", hint="choose another name")
        kind = conn.execute(select(t.sources.c.kind).where(t.sources.c.name == name)).scalar()
        if scope in COLLECT_SCOPES and kind == "records":
            # Collected calls are interactions of the source named after the key.
            raise ConfigError(
                f"source {name!r} holds records, so a write key cannot collect into it",
                hint="name the write key after a new source",
            )
        if user_id_field is not None:
            source_id = ensure_source(conn, name, Kind.INTERACTIONS)
            conn.execute(
                t.sources.update()
                .where(t.sources.c.id == source_id)
                .values(user_id_field=user_id_field)
            )
        conn.execute(
            t.api_keys.insert().values(
                name=name,
                prefix=key[: len(PREFIX) + 4],
                key_hash=key_hash(key),
                scope=scope,
                purposes=orjson.dumps(sorted(set(purposes))).decode(),
                created_at=datetime.now(UTC),
            )
        )
        detail: dict[str, Any] = {"name": name, "scope": scope, "purposes": sorted(set(purposes))}
        if user_id_field:
            detail["user_id_field"] = user_id_field
        audit.append(conn, actor=actor, action="key.create", detail=detail)
    return key


def _check_user_id_field(scope: str, user_id_field: str | None) -> None:
    """Refuse a user id field that is unknown, or given to a key that does not collect."""
    if user_id_field is None:
        return
    if scope not in COLLECT_SCOPES:
        raise ConfigError(
            f"--user-id-field is a setting of a collection key, not of a {scope} key",
            hint="give it with --scope write or --scope server",
        )
    if user_id_field not in USER_ID_FIELDS:
        raise ConfigError(
            f"unknown --user-id-field {user_id_field!r}",
            hint=f"use one of {', '.join(USER_ID_FIELDS)}",
        )


def verify(app: Custos, key: str | None) -> ApiKey | None:
    """The active key ``key`` is, or None (unknown, revoked or empty)."""
    if not key:
        return None
    digest = key_hash(key)
    api_keys, sources = t.api_keys, t.sources
    with app.store.read() as conn:
        row = conn.execute(
            select(api_keys, sources.c.user_id_field)
            .outerjoin(sources, sources.c.name == api_keys.c.name)
            .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
        ).first()
    # The index lookup found it by hash; compare again in constant time all the same.
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    user_id_field = row.user_id_field or "customer_id"
    return ApiKey(row.id, row.name, row.scope, tuple(orjson.loads(row.purposes)), user_id_field)


def revoke(app: Custos, name: str, *, actor: str = "cli") -> None:
    """Revoke the key ``name``: it is refused from the next request on."""
    with app.store.write() as conn:
        found = conn.execute(
            select(t.api_keys.c.id).where(
                t.api_keys.c.name == name, t.api_keys.c.revoked_at.is_(None)
            )
        ).first()
        if found is None:
            raise NotFoundError(f"no active key named {name!r}", hint="see custos keys list")
        conn.execute(
            t.api_keys.update()
            .where(t.api_keys.c.id == found[0])
            .values(revoked_at=datetime.now(UTC))
        )
        audit.append(conn, actor=actor, action="key.revoke", detail={"name": name})


def listing(app: Custos) -> list[dict[str, Any]]:
    """Every key: name, prefix, scope, purposes, created and revoked times (never the hash)."""
    with app.store.read() as conn:
        rows = conn.execute(select(t.api_keys).order_by(t.api_keys.c.id)).all()
    return [
        {
            "name": r.name,
            "prefix": r.prefix,
            "scope": r.scope,
            "purposes": orjson.loads(r.purposes),
            "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in rows
    ]


def identity_secret(app: Custos, name: str) -> str:
    """The identity secret of the collection key ``name`` (hex): the site's server sends
    ``context.userHash = HMAC-SHA256(secret, userId)`` (hex) with a browser's ``identify`` to
    verify it. Derived from ``CUSTOS_SECRET_KEY_FILE``, so it is never stored; rotating that
    file rotates every secret."""
    with app.store.read() as conn:
        scope = conn.execute(
            select(t.api_keys.c.scope).where(
                t.api_keys.c.name == name, t.api_keys.c.revoked_at.is_(None)
            )
        ).scalar()
    if scope not in COLLECT_SCOPES:
        raise NotFoundError(f"no active collection key named {name!r}", hint="see custos keys list")
    return _identity_secret(app, name).hex()


def _identity_secret(app: Custos, name: str) -> bytes:
    return app.identity_secrets.of(name)


class IdentitySecrets:
    """The identity secrets of collection keys under one secret key file, each derived once
    (a server checks a signature on every call). A custos instance keeps one: the key file is
    read once per instance, so a rotated key file takes effect when the server restarts."""

    #: names remembered at most (a memo, not a list of keys)
    MAX = 256

    def __init__(self, key_file: str | Path) -> None:
        self.key_file = str(key_file)
        self._master: bytes | None = None
        self._derived: dict[str, bytes] = {}

    def of(self, name: str) -> bytes:
        """The identity secret of key ``name``."""
        found = self._derived.get(name)
        if found is None:
            if self._master is None:
                self._master = load_or_create_key(self.key_file)
            if len(self._derived) >= self.MAX:
                self._derived.clear()
            message = b"custos identify\x1f" + name.encode()
            found = self._derived[name] = hmac.new(self._master, message, hashlib.sha256).digest()
        return found


def signed(app: Custos, name: str, user_id: str, user_hash: object) -> bool:
    """Whether ``user_hash`` is the collection key ``name``'s signature of ``user_id`` (see
    :func:`identity_secret`); compared in constant time."""
    if type(user_hash) is not str or len(user_hash) != 64:
        return False
    expected = hmac.new(_identity_secret(app, name), user_id.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, user_hash.lower())
