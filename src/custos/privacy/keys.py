"""The secret key behind keyed hashes and pseudonyms: a file outside the store, created once.

Suppression entries of erased persons and the pseudonyms of de-identified releases are HMACs
with this key. It never enters the store (someone with a copy of the database cannot test
guesses against the hashes); the store keeps only a fingerprint, so that a different key is
noticed instead of silently letting erased persons back in. The key file itself is read (and
created) by :func:`custos.core.keys.load_or_create_key`, shared with the audit log.
"""

from __future__ import annotations

import hashlib
import hmac

from custos.core.keys import load_or_create_key as load_or_create_key

#: store_meta key of the fingerprint of the key the suppression list was made with.
FINGERPRINT_META = "secret_key_fingerprint"


def fingerprint(key: bytes) -> str:
    """A value that identifies the key without revealing it (an HMAC of a fixed text)."""
    return hmac.new(key, b"custos key fingerprint", hashlib.sha256).hexdigest()[:16]
