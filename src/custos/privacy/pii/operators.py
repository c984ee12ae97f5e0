"""Redaction operators for Presidio's anonymizer: redact, pseudonymise (keyed HMAC), keep.

The pseudonymisation key is passed in by the caller for each call and never stored: it lives
only in the operator closures built for that call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Literal

from presidio_anonymizer.entities import OperatorConfig

from custos.core.errors import ConfigError
from custos.privacy.pii.findings import EMAIL, IBAN, PHONE

Mode = Literal["redact", "pseudonymise", "keep"]
MODES: tuple[Mode, ...] = ("redact", "pseudonymise", "keep")
MIN_KEY_BYTES = 16
TOKEN_HEX = 12

_SPACE = re.compile(r"\s+")


def normalise(entity_type: str, value: str) -> str:
    """The form a value is hashed in, so that spelling variants get one pseudonym."""
    if entity_type == IBAN:
        return re.sub(r"[^0-9A-Za-z]", "", value).upper()
    if entity_type == PHONE:
        return ("+" if value.lstrip().startswith("+") else "") + re.sub(r"\D", "", value)
    if entity_type == EMAIL:
        return value.strip().casefold()
    return _SPACE.sub(" ", value.strip()).casefold()


def pseudonym(key: bytes, entity_type: str, value: str) -> str:
    """``<TYPE_3f9a1c2b7d4e>``: a keyed HMAC-SHA256 of the normalised value, typed."""
    message = f"{entity_type}\x1f{normalise(entity_type, value)}".encode()
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()[:TOKEN_HEX]
    return f"<{entity_type}_{digest}>"


def check_key(key: bytes | None) -> bytes:
    """The key, if it is bytes of usable length; otherwise ``ConfigError`` (key not shown)."""
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"pseudonymise needs a key of at least {MIN_KEY_BYTES} bytes",
            hint="pass key=<secret bytes> from your secret store, e.g. secrets.token_bytes(32)",
        )
    return bytes(key)


def operator_for(entity_type: str, mode: Mode, key: bytes | None) -> OperatorConfig:
    """The Presidio operator that applies ``mode`` to entities of ``entity_type``."""
    if mode == "redact":
        return OperatorConfig("replace", {"new_value": f"<{entity_type}>"})
    if mode == "keep":
        return OperatorConfig("keep")
    if mode == "pseudonymise":
        secret = check_key(key)
        return OperatorConfig(
            "custom", {"lambda": lambda value: pseudonym(secret, entity_type, value)}
        )
    raise ConfigError(f"unknown redaction mode {mode!r}", hint=f"use one of {', '.join(MODES)}")


def check_modes(mode: Mode, key: bytes | None, per_entity: Mapping[str, Mode] | None) -> None:
    """Fail early (whether or not the text holds findings) on an unknown mode or missing key."""
    modes = {mode, *(per_entity or {}).values()}
    for unknown in sorted(modes - set(MODES)):
        raise ConfigError(
            f"unknown redaction mode {unknown!r}", hint=f"use one of {', '.join(MODES)}"
        )
    if "pseudonymise" in modes:
        check_key(key)


def operators(
    entity_types: Iterable[str],
    mode: Mode,
    key: bytes | None,
    per_entity: Mapping[str, Mode] | None = None,
) -> dict[str, OperatorConfig]:
    """One operator per entity type: ``per_entity`` overrides ``mode``."""
    check_modes(mode, key, per_entity)
    per_entity = per_entity or {}
    return {
        entity_type: operator_for(entity_type, per_entity.get(entity_type, mode), key)
        for entity_type in entity_types
    }
