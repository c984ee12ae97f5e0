"""Secret key files: created once outside the store, readable by their owner only.

One implementation for every key custos keeps in a file: the secret key behind erasure
suppression and pseudonyms (:mod:`custos.privacy.keys`) and the audit key behind the audit
log's hash chain and checkpoints (:mod:`custos.store.audit`), each in a file of its own.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from custos.core.errors import ConfigError

KEY_BYTES = 32


def load_or_create_key(path: str | Path) -> bytes:
    """The key in ``path`` (hex text); created with mode 0600 (folder 0700) when missing.

    Refuses a key file that others may read, or one that holds no key of usable length.
    """
    file = Path(path).expanduser()
    if not file.exists():
        try:
            file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # created by a concurrent first use: read that one
            pass
        except OSError as exc:
            raise ConfigError(
                f"cannot create the key file {file} ({type(exc).__name__})",
                hint="point CUSTOS_SECRET_KEY_FILE / CUSTOS_AUDIT_KEY_FILE at a folder you "
                "may write, outside the store",
            ) from exc
        else:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(KEY_BYTES) + "\n")
    mode = file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the key file {file} is readable by other users",
            hint=f"chmod 600 {file}",
        )
    text = file.read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise ConfigError(
            f"the key file {file} does not hold a key of {KEY_BYTES} bytes in hex",
            hint="restore the key file from your backup (a new secret key lets erased persons "
            "back in; a new audit key fails the audit log's verification)",
        )
    return key
