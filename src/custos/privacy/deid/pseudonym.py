"""Keyed hashes (HMAC-SHA256): suppression entries and release pseudonyms, never reversible
without the secret key, and stable for the same key, domain and value."""

from __future__ import annotations

import hashlib
import hmac

PSEUDONYM_HEX = 24  # 96 bits: no collisions among billions of persons, short enough to read


def keyed_hash(key: bytes, domain: str, value: str) -> str:
    """The full HMAC-SHA256 (hex) of ``value`` in ``domain`` (e.g. ``suppress:email``)."""
    return hmac.new(key, f"{domain}\x1f{value}".encode(), hashlib.sha256).hexdigest()


def pseudonym(key: bytes, domain: str, value: str) -> str:
    """A short pseudonym ``p_…`` for ``value``: the same person gets the same pseudonym within
    one domain (one release, or one purpose for linkable releases), different ones across
    domains."""
    return "p_" + keyed_hash(key, domain, value)[:PSEUDONYM_HEX]
