"""The tamper-evident audit log: a hash chain keyed with a secret outside the store, its head
anchored in a checkpoint file outside the store.

Each entry's hash is an HMAC (with the audit key, a file of its own) of the
entry, its id and the hash before it: someone who can edit the store but not read the key can
neither change an entry nor recompute the chain after it. The checkpoint file (beside the key)
records the newest entry's id and hash, signed with the same key, and moves forward after each
commit that appended entries: deleting the tail or every entry leaves the store behind its
checkpoint. Entries written before the key was used (stores of earlier versions) keep their
unkeyed SHA-256 hashes; the id of the first keyed entry is kept in ``store_meta`` and in every
checkpoint, and that entry's HMAC covers the last unkeyed hash, so it anchors them.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

import orjson
from sqlalchemy import Connection, bindparam, make_url, select

from custos.core.errors import ConfigError, StoreError
from custos.store import meta
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.store.base import Store

GENESIS = "0" * 64
#: store_meta key: the id of the first entry hashed with the audit key.
KEYED_FROM = "audit_keyed_from"
#: Size of the checkpoint file: its JSON, padded with spaces (so a rewrite is one write).
CHECKPOINT_BYTES = 512
#: Execution option of a write transaction: its :class:`Pending` (set by ``Store.write``).
PENDING_OPTION = "custos_audit"

log = logging.getLogger(__name__)


def checkpoint_path(key_file: Path, url: str) -> Path:
    """The default checkpoint of the store at ``url``: a file named after a hash of the URL
    (password masked, so changing it keeps the checkpoint) in the folder ``audit`` beside the
    audit key file."""
    shown = make_url(url).render_as_string(hide_password=True)
    name = hashlib.sha256(shown.encode()).hexdigest()[:16]
    return key_file.parent / "audit" / f"{name}.json"


def _digest(
    key: bytes | None,
    entry: int,
    prev: str,
    at: datetime,
    actor: str,
    action: str,
    purpose: str | None,
    subjects: str,
    detail: str,
) -> str:
    fields = (prev, at.isoformat(), actor, action, purpose or "", subjects, detail)
    if key is None:  # entries written before the chain was keyed
        return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()
    body = "\x1f".join((str(entry), *fields)).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The head of the chain at one moment: newest entry id and hash, where keyed hashes begin."""

    seq: int
    hash: str
    keyed_from: int | None
    at: str

    def signed(self, key: bytes) -> bytes:
        """The checkpoint as JSON, with an HMAC of its fields under the audit key."""
        fields = asdict(self)
        mac = hmac.new(key, orjson.dumps(fields, option=orjson.OPT_SORT_KEYS), hashlib.sha256)
        return orjson.dumps({**fields, "mac": mac.hexdigest()})

    @classmethod
    def parse(cls, data: bytes, key: bytes, where: Path) -> Checkpoint:
        """A checkpoint from its JSON; refused when it was not signed with ``key``."""
        try:
            fields = orjson.loads(data)
            mac = fields.pop("mac")
            found = cls(**fields)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise StoreError(
                f"the audit checkpoint {where} cannot be read ({type(exc).__name__})",
                hint="restore it from a copy (custos audit checkpoint exports one)",
            ) from exc
        expected = hmac.new(key, orjson.dumps(fields, option=orjson.OPT_SORT_KEYS), hashlib.sha256)
        if not hmac.compare_digest(str(mac), expected.hexdigest()):
            raise StoreError(
                f"the audit checkpoint {where} is not signed with this store's audit key",
                hint="it was edited, or belongs to another audit key file",
            )
        return found

    @classmethod
    def load(cls, path: Path, key: bytes) -> Checkpoint:
        """Read a checkpoint file (e.g. one exported by ``custos audit checkpoint``)."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StoreError(
                f"the audit checkpoint {path} cannot be read ({type(exc).__name__})",
                hint="check the path",
            ) from exc
        return cls.parse(data, key, path)


class Anchor:
    """What keys and anchors one store's chain: the audit key and the checkpoint file.

    The checkpoint file is rewritten in place, under an exclusive lock on the file itself, in
    one write of a fixed size (readers take a shared lock): creating and renaming a file per
    audited read would cost more than the read."""

    def __init__(self, key: bytes, checkpoint: Path) -> None:
        self.key = key
        self.checkpoint = checkpoint
        #: Where keyed entries begin, once a commit of this process has seen it (it never
        #: changes after; saves a look-up per entry).
        self.keyed_from: int | None = None

    def read(self) -> Checkpoint | None:
        """The checkpoint, or None when there is none yet."""
        try:
            fd = os.open(self.checkpoint, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(
                f"the audit checkpoint {self.checkpoint} cannot be read ({type(exc).__name__})",
                hint="custos needs to read and write it (CUSTOS_AUDIT_CHECKPOINT_FILE)",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            data = os.pread(fd, CHECKPOINT_BYTES, 0)
        finally:
            os.close(fd)  # releases the lock
        return self._parse(data)

    def _parse(self, data: bytes) -> Checkpoint | None:
        return Checkpoint.parse(data, self.key, self.checkpoint) if data.strip() else None

    def advance(self, head: Checkpoint) -> None:
        """Record ``head`` unless the checkpoint is at it or beyond already (it never moves
        backwards: processes that commit in one order may get here in another), or cannot be
        read (kept as the evidence it is). Mode 0600, folder 0700."""
        self.checkpoint.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.checkpoint, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = os.pread(fd, CHECKPOINT_BYTES, 0)
            try:
                current = self._parse(data)
            except StoreError:
                return
            if current is not None and head.seq <= current.seq:
                return
            if current is None:  # a new file: 0600 whatever the umask
                os.fchmod(fd, 0o600)
            os.pwrite(fd, head.signed(self.key).ljust(CHECKPOINT_BYTES), 0)
        finally:
            os.close(fd)  # releases the lock


class Pending:
    """The audit state of one write transaction: its newest entry, written to the checkpoint
    once the transaction has committed (a rolled-back entry must never be anchored)."""

    def __init__(self, anchor: Anchor | None) -> None:
        self.anchor = anchor
        self.head: Checkpoint | None = None
        self.checked = False
        self.diverged = False

    def committed(self) -> None:
        """Move the checkpoint to the entries this transaction appended."""
        if self.anchor is None or self.head is None:
            return
        self.anchor.keyed_from = self.head.keyed_from
        if self.diverged:
            return
        try:
            self.anchor.advance(self.head)
        except OSError as exc:  # committed already: the checkpoint stays behind, not wrong
            log.warning("the audit checkpoint could not be written: %s", type(exc).__name__)


def _keyed_from(conn: Connection) -> int | None:
    value = meta.get(conn, KEYED_FROM)
    return int(value) if value is not None else None


def _check_continuity(
    conn: Connection, pending: Pending, anchor: Anchor, last: int, last_hash: str
) -> None:
    """Before the first entry of a transaction: does the store still hold the entry the
    checkpoint records? If not (the tail was deleted, the chain rewritten), the checkpoint is
    not moved again: it stays the evidence until ``custos audit verify`` reports it."""
    pending.checked = True
    try:
        found = anchor.read()
    except StoreError:
        found = None
        pending.diverged = True
    if found is not None and found.seq == last:  # the usual case: the checkpoint is the head
        pending.diverged = found.hash != last_hash
    elif found is not None and found.seq > 0:
        stored = conn.execute(_HASH_OF, {"id": found.seq}).scalar()
        pending.diverged = found.seq > last or stored != found.hash
    if pending.diverged:
        log.warning("the audit log no longer matches its checkpoint; run custos audit verify")


# Built once: an audited read spends less on statement construction.
_LAST = select(t.audit_log.c.id, t.audit_log.c.hash).order_by(t.audit_log.c.id.desc()).limit(1)
_HASH_OF = select(t.audit_log.c.hash).where(t.audit_log.c.id == bindparam("id"))
_INSERT = t.audit_log.insert()


def append(
    conn: Connection,
    *,
    actor: str,
    action: str,
    purpose: str | None = None,
    subjects: Iterable[str] = (),
    detail: dict[str, object] | None = None,
) -> str:
    """Append one entry (inside the caller's write transaction) and return its hash."""
    pending: Pending | None = conn.get_execution_options().get(PENDING_OPTION)
    anchor = pending.anchor if pending is not None else None
    last_row = conn.execute(_LAST).first()
    last, prev = (int(last_row.id), last_row.hash) if last_row else (0, GENESIS)
    entry = last + 1  # writers are serialised: the next id is ours
    if anchor is None:
        if _keyed_from(conn) is not None:
            raise StoreError(
                "the audit log is keyed, and this store was opened without its audit key",
                hint="open the store through Custos.open (it loads CUSTOS_AUDIT_KEY_FILE)",
            )
        key, keyed_from = None, None
    else:
        assert pending is not None
        key = anchor.key
        keyed_from = anchor.keyed_from or _keyed_from(conn)
        if keyed_from is None:  # the first keyed entry: record the switch with it
            meta.put(conn, KEYED_FROM, str(entry))
            keyed_from = entry
        if not pending.checked:
            _check_continuity(conn, pending, anchor, last, prev)
    at = datetime.now(UTC).replace(microsecond=0)
    subject_text = ",".join(sorted(subjects))
    detail_text = orjson.dumps(detail or {}, option=orjson.OPT_SORT_KEYS).decode()
    digest = _digest(key, entry, prev, at, actor, action, purpose, subject_text, detail_text)
    conn.execute(
        _INSERT,
        {
            "id": entry,
            "at": at,
            "actor": actor,
            "action": action,
            "purpose": purpose,
            "subjects": subject_text,
            "detail": detail_text,
            "prev_hash": prev,
            "hash": digest,
        },
    )
    if pending is not None and anchor is not None:
        pending.head = Checkpoint(entry, digest, keyed_from, at.isoformat())
    return digest


class Entry(TypedDict, total=False):
    """What an entry may say besides its actor and action (as :func:`append` takes it)."""

    purpose: str | None
    subjects: Iterable[str]
    detail: dict[str, object] | None


def record(store: Store, actor: str, action: str, **entry: Unpack[Entry]) -> str:
    """Append one entry in a write transaction of its own (an action that writes nothing else:
    a listing, a look-up, a report) and return its hash."""
    with store.write() as conn:
        return append(conn, actor=actor, action=action, **entry)


@dataclass(frozen=True, slots=True)
class Finding:
    """Why the audit log cannot be trusted: the first entry concerned (None: no single entry)
    and what is wrong, in words (ids only)."""

    entry: int | None
    reason: str


def head(conn: Connection) -> Checkpoint:
    """The chain's head now (id and hash of the newest entry; 0 and the genesis when empty)."""
    row = conn.execute(
        select(t.audit_log.c.id, t.audit_log.c.hash, t.audit_log.c.at)
        .order_by(t.audit_log.c.id.desc())
        .limit(1)
    ).first()
    keyed_from = _keyed_from(conn)
    if row is None:
        return Checkpoint(0, GENESIS, keyed_from, datetime.now(UTC).isoformat())
    return Checkpoint(int(row.id), row.hash, keyed_from, row.at.isoformat())


def verify(
    conn: Connection, anchor: Anchor | None = None, extra: Sequence[Checkpoint] = ()
) -> Finding | None:
    """Check every hash of the chain, then the chain's end against the checkpoint file of
    ``anchor`` and the ``extra`` checkpoints (exported earlier). None when all hold.

    Without an anchor only an unkeyed chain can be checked, and only for changed entries."""
    keyed_from = _keyed_from(conn)
    checkpoints = list(extra)
    local: Checkpoint | None = None
    if anchor is not None:
        try:
            local = anchor.read()
        except StoreError as exc:
            return Finding(None, exc.message)
        if local is not None:
            checkpoints.insert(0, local)
    wanted = {cp.seq for cp in checkpoints}
    seen: dict[int, str] = {}
    prev, last = GENESIS, 0
    rows = conn.execution_options(yield_per=2000).execute(
        select(t.audit_log).order_by(t.audit_log.c.id)
    )
    with rows:  # leaving early closes the server-side cursor (PostgreSQL)
        for row in rows:
            keyed = keyed_from is not None and row.id >= keyed_from
            if keyed and anchor is None:
                raise ConfigError(
                    "the audit log is keyed: it can only be verified with its audit key",
                    hint="run custos audit verify (it loads CUSTOS_AUDIT_KEY_FILE)",
                )
            key = anchor.key if keyed and anchor is not None else None
            expected = _digest(
                key,
                row.id,
                prev,
                row.at,
                row.actor,
                row.action,
                row.purpose,
                row.subjects or "",
                row.detail or "",
            )
            if row.prev_hash != prev or not hmac.compare_digest(row.hash, expected):
                return Finding(
                    int(row.id),
                    f"entry {row.id} was changed, or an entry before it removed "
                    "(its hash does not match)",
                )
            if row.id in wanted:
                seen[row.id] = row.hash
            prev, last = row.hash, int(row.id)
    for cp in checkpoints:
        if cp.seq > last:
            return Finding(
                last + 1,
                f"entries {last + 1} to {cp.seq} were removed: the checkpoint of {cp.at} "
                f"records {cp.seq} entries, the log ends at {last}",
            )
        if (cp.keyed_from is not None and cp.keyed_from != keyed_from) or (
            cp.keyed_from is None and keyed_from is not None and keyed_from <= cp.seq
        ):
            return Finding(
                cp.keyed_from or keyed_from,
                f"the store says keyed hashes begin at entry {keyed_from or 'none'}, the "
                f"checkpoint of {cp.at} at {cp.keyed_from or 'none'}: the chain was rewritten",
            )
        if cp.seq > 0 and seen.get(cp.seq) != cp.hash:
            return Finding(
                cp.seq,
                f"entry {cp.seq} differs from the checkpoint of {cp.at}: the chain was rewritten",
            )
    if anchor is not None and local is None and keyed_from is not None:
        return Finding(
            None,
            f"there is no audit checkpoint at {anchor.checkpoint}: removed entries at the end "
            "of the log cannot be detected",
        )
    return None
