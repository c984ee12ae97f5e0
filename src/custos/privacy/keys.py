"""The secret key behind keyed hashes and pseudonyms: a file outside the store, created once.

Suppression entries of erased persons and the pseudonyms of de-identified releases are HMACs
with this key. It never enters the store (someone with a copy of the database cannot test
guesses against the hashes); the store keeps only a fingerprint, so that a different key is
noticed instead of silently letting erased persons back in.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from custos.core.errors import ConfigError

KEY_BYTES = 32
#: store_meta key of the fingerprint of the key the suppression list was made with.
FINGERPRINT_META = "secret_key_fingerprint"


def load_or_create_key(path: str | Path) -> bytes:
    """The key in ``path`` (hex text); created with mode 0600 (folder 0700) when missing.

    Refuses a key file that others may read, or one that holds no key of usable length.
    """
    file = Path(path).expanduser()
    if not file.exists():
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # created by a concurrent first use: read that one
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(KEY_BYTES) + "\n")
    mode = file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the secret key file {file} is readable by other users",
            hint=f"chmod 600 {file}",
        )
    text = file.read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise ConfigError(
            f"the secret key file {file} does not hold a key of {KEY_BYTES} bytes in hex",
            hint="restore the key file from your backup (a new key lets erased persons back in)",
        )
    return key


def fingerprint(key: bytes) -> str:
    """A value that identifies the key without revealing it (an HMAC of a fixed text)."""
    return hmac.new(key, b"custos key fingerprint", hashlib.sha256).hexdigest()[:16]
