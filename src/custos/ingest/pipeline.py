"""File ingestion: read → normalise (optionally in worker processes) → write, batch by batch.

Each batch is written in one transaction: raw rows, normalised rows and quarantine entries land
together or not at all. Re-ingesting a file stores nothing twice: records and interactions are
keyed by (source, record_id), consent events and quarantined rows by a content hash. A record
id stored before with other values (a CRM re-export after an edit) is a new version of that
record: the current row is replaced and the old one kept in ``record_versions``.
"""

from __future__ import annotations

import gc
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from operator import attrgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, select

from custos.core.errors import ConfigError
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.ingest import normalise as n
from custos.ingest import sink, versions
from custos.ingest.mapping import ColumnMap, MapFile
from custos.ingest.readers import Reader, Unit, reader_for
from custos.ingest.rows import (
    COLUMNS,
    Bad,
    Good,
    Memos,
    NormalisedBatch,
    RowContext,
    TextFilter,
    consent_key,
    normalise_batch,
)

# Where ingestion's callers have known them:
from custos.ingest.sink import SUPPRESSED_REASON as SUPPRESSED_REASON
from custos.ingest.sink import (
    SuppressionCheck,
    close_landed,
    quarantine,
    row_key,
    suppressed,
)
from custos.ingest.sink import ensure_source as ensure_source
from custos.store import Store
from custos.store import tables as t

ProgressFn = Callable[[int, int], None]
PARALLEL_MIN_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Counts:
    """What one batch did."""

    read: int
    stored: int  # new rows
    duplicates: int  # rows stored before, unchanged
    quarantined: int
    quarantined_new: int
    fields_dropped: int = 0
    changed: int = 0  # rows stored before with other values: new versions of their records
    skipped: int = 0  # blank lines
    closed: int = 0  # quarantine entries closed: their rows landed now


@dataclass
class IngestSummary:
    """What one ingestion run did."""

    source: str
    kind: Kind
    file: str
    read: int = 0
    stored: int = 0  # new rows
    changed: int = 0  # new versions of records stored before
    duplicates: int = 0  # unchanged rows stored before
    quarantined: int = 0
    quarantined_new: int = 0
    fields_dropped: int = 0
    skipped: int = 0  # blank lines
    closed: int = 0  # quarantine entries of earlier runs closed: their rows landed now
    #: the file's columns that are no canonical field (stored as extra attributes)
    extra_columns: list[str] = field(default_factory=list)
    #: those no purpose may use yet (category ``unclassified``): filled in by the caller that
    #: knows the taxonomy
    unclassified: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, counts: Counts) -> None:
        """Add one batch's counts."""
        self.read += counts.read
        self.stored += counts.stored
        self.changed += counts.changed
        self.duplicates += counts.duplicates
        self.quarantined += counts.quarantined
        self.quarantined_new += counts.quarantined_new
        self.fields_dropped += counts.fields_dropped
        self.skipped += counts.skipped
        self.closed += counts.closed

    @property
    def ok(self) -> bool:
        """False only when rows were there but none could be stored (nor were already stored)."""
        return self.stored + self.changed + self.duplicates > 0 or (
            self.read == 0 and self.quarantined == 0
        )


def default_region(settings: Settings) -> str | None:
    """``CUSTOS_DEFAULT_REGION`` as a region phonenumbers knows (None while unset)."""
    if settings.default_region is None:
        return None
    region = n.phone_region(settings.default_region)
    if region is None:
        raise ConfigError(
            f"CUSTOS_DEFAULT_REGION {settings.default_region!r} is not a known region",
            hint="use a country's ISO code (DE, GB, US), or unset it to keep national numbers "
            "without a country",
        )
    return region


@dataclass(frozen=True)
class ReadRules:
    """How the rows of a source are read, whichever way they come in (a file, the quarantine
    read again): the settings, the map file, the free-text policy ``pii`` and its filter
    (``text_filter``), the normal forms remembered so far (``memos``), the purposes a
    consent event may name (None: any) and the check that recognises an erased person's rows
    (``suppressed``)."""

    settings: Settings
    map_file: MapFile = field(default_factory=MapFile)
    suppressed: SuppressionCheck | None = None
    pii: str = "keep"
    purposes: frozenset[str] | None = None
    text_filter: TextFilter | None = None
    memos: Memos = field(default_factory=Memos, compare=False)

    def row_context(self, kind: Kind, cmap: ColumnMap) -> RowContext:
        """How rows of ``kind`` are normalised: the map file's options over the settings."""
        map_file, settings = self.map_file, self.settings
        return RowContext(
            kind=kind,
            region=cmap.phone_region or default_region(settings),
            date_format=map_file.date_format,
            channel=map_file.channel,
            bad_fields=settings.bad_fields,
            pii=self.pii,
            text_filter=self.text_filter,
            text_columns=frozenset(
                c for c, tag in map_file.categories.items() if tag == "free_text"
            ),
            upper_customer_id=map_file.upper_customer_id,
            purposes=self.purposes,
            memos=self.memos,
        )


def resolve_kind(store: Store, source: str, kind: Kind | None, map_file: MapFile) -> Kind:
    """The kind of a file: the option, else the map file, else the source's, else records."""
    if kind is not None:
        return kind
    if map_file.kind is not None:
        return map_file.kind
    with store.read() as conn:
        existing = conn.execute(select(t.sources.c.kind).where(t.sources.c.name == source)).scalar()
    return Kind(existing) if existing in (Kind.RECORDS, Kind.INTERACTIONS) else Kind.RECORDS


def tag_columns(conn: Connection, source_id: int, categories: dict[str, str]) -> None:
    """Remember the data category of a source's extra columns (the map file's ``categories``)."""
    for column, category in sorted(categories.items()):
        key = (t.source_columns.c.source_id == source_id) & (t.source_columns.c.column == column)
        if conn.execute(select(t.source_columns.c.category).where(key)).first() is None:
            conn.execute(
                t.source_columns.insert().values(
                    source_id=source_id, column=column, category=category
                )
            )
        else:
            conn.execute(t.source_columns.update().where(key).values(category=category))


def ingest_file(
    store: Store,
    path: Path,
    source: str,
    rules: ReadRules,
    *,
    kind: Kind | None = None,
    progress: ProgressFn | None = None,
) -> IngestSummary:
    """Ingest one file into ``source`` and return the summary (bad rows go to quarantine, and
    so do the rows ``rules.suppressed`` recognises as an erased person's, without their
    values). The free-text policy is applied before anything is stored; a consent event for a
    purpose not in ``rules.purposes`` (when given) is quarantined."""
    started = time.perf_counter()
    map_file, settings = rules.map_file, rules.settings
    source = source or map_file.source or ""
    if not source:
        raise ConfigError("no source name", hint="pass --source NAME")
    kind = resolve_kind(store, source, kind, map_file)
    reader = reader_for(path, settings.batch_size, map_file.encoding)
    cmap = ColumnMap(map_file, kind, reader.columns)
    job = _Job(
        reader=reader,
        cmap=cmap,
        ctx=rules.row_context(kind, cmap),
        source=source,
        kind=kind,
        file_name=path.name,
        suppressed=rules.suppressed,
    )
    with store.write() as conn:
        job.source_id = ensure_source(conn, source, kind)
        tag_columns(conn, job.source_id, map_file.categories)
    summary = IngestSummary(source=source, kind=kind, file=path.name, extra_columns=cmap.extra)
    done = 0
    workers = _workers(settings, reader, store)
    for counts, size in _run(job, store, workers):
        summary.add(counts)
        done += size
        if progress:
            progress(done, reader.total)
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass
class _Job:
    """Everything a worker needs to turn a unit of the file into stored rows (picklable)."""

    reader: Reader
    cmap: ColumnMap
    ctx: RowContext
    source: str
    kind: Kind
    file_name: str
    source_id: int = 0
    suppressed: SuppressionCheck | None = None


def _workers(settings: Settings, reader: Reader, store: Store) -> int:
    if store.in_memory:
        return 0
    if settings.workers:
        return settings.workers if settings.workers > 1 else 0
    cores = os.cpu_count() or 1
    if reader.path.stat().st_size < PARALLEL_MIN_BYTES or cores < 2:
        return 0
    return min(cores, 4)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for one unit (parse, normalise and write).

    A unit allocates hundreds of thousands of short-lived, acyclic objects; the collector would
    scan them again and again (measured: 14% of the time while normalising, and as much again
    while the writer builds its rows, had it been re-enabled between the two). Reference counting
    still frees everything; the collector resumes after the unit.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _normalise(job: _Job, unit: Unit) -> NormalisedBatch:
    return normalise_batch(job.reader.parse(unit), job.cmap, job.ctx)


def _process(job: _Job, store: Store, unit: Unit) -> Counts:
    with _no_cyclic_gc():
        return BatchWriter.of(store, job).write(_normalise(job, unit))


def _run(job: _Job, store: Store, workers: int) -> Iterator[tuple[Counts, int]]:
    if workers == 0:
        for unit in job.reader.units():
            yield _process(job, store, unit), unit.size
        return
    # Workers parse, normalise and write in parallel; a turnstile makes them commit in file
    # order, so the result is the same as a sequential run (first occurrence of an id wins,
    # ids follow the file). At most two units per worker are in flight: memory stays flat.
    store.engine.dispose()  # no open connection may cross the fork
    # Nor garbage: a cycle that holds a native handle (a DuckDB connection, an ONNX session)
    # must be finalised here, not by a worker's collector, where its threads do not exist (a
    # worker crashed so in a test run). Each worker also freezes what it inherits.
    gc.collect()
    ctx = get_context("fork")
    turn, abort, cond = ctx.Value("q", 0), ctx.Value("b", False), ctx.Condition()
    with ProcessPoolExecutor(
        workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(store.url, job, turn, abort, cond),
    ) as pool:
        pending: deque[tuple[Future[Counts], int]] = deque()
        try:
            for seq, unit in enumerate(job.reader.units()):
                pending.append((pool.submit(_work, seq, unit), unit.size))
                if len(pending) >= 2 * workers:
                    future, size = pending.popleft()
                    yield future.result(), size
            while pending:
                future, size = pending.popleft()
                yield future.result(), size
        except BaseException:
            with cond:
                abort.value = True
                cond.notify_all()
            for future, _ in pending:
                future.cancel()
            raise


_record_id = attrgetter("record_id")
_WORKER: dict[str, Any] = {}
TURN_TIMEOUT_S = 3600


def _init_worker(url: str, job: _Job, turn: Any, abort: Any, cond: Any) -> None:
    from custos.store import open_store

    gc.freeze()  # the parent's objects are the parent's: this worker never collects them

    _WORKER.update(store=open_store(url, migrate=False), job=job, turn=turn, abort=abort, cond=cond)


def _work(seq: int, unit: Unit) -> Counts:
    job: _Job = _WORKER["job"]
    store: Store = _WORKER["store"]
    turn, abort, cond = _WORKER["turn"], _WORKER["abort"], _WORKER["cond"]
    with _no_cyclic_gc():
        batch = _normalise(job, unit)
        with cond:
            if not cond.wait_for(lambda: turn.value == seq or abort.value, timeout=TURN_TIMEOUT_S):
                raise TimeoutError("an earlier batch never finished")
        try:
            if abort.value:
                raise RuntimeError("ingestion aborted by an earlier failure")
            return BatchWriter.of(store, job).write(batch)
        except BaseException:
            abort.value = True
            raise
        finally:
            with cond:
                turn.value += 1
                cond.notify_all()


class BatchWriter:
    """Writes one normalised batch of a source's file in its own transaction and counts what
    happened."""

    def __init__(
        self,
        store: Store,
        source: str,
        source_id: int,
        kind: Kind,
        file_name: str,
        suppressed: SuppressionCheck | None,
    ) -> None:
        self.store = store
        self.source = source
        self.source_id = source_id
        self.kind = kind
        self.file_name = file_name
        self.suppressed = suppressed

    @classmethod
    def of(cls, store: Store, job: _Job) -> BatchWriter:
        """The writer of a file's job."""
        return cls(store, job.source, job.source_id, job.kind, job.file_name, job.suppressed)

    def write(self, batch: NormalisedBatch) -> Counts:
        """Write the batch atomically: all of it lands, or none of it."""
        now = datetime.now(UTC)
        hidden: list[tuple[int, str]] = []
        if self.suppressed is not None:
            batch, hidden = self._suppress(batch, self.suppressed)
        with self.store.write() as conn:
            changed = 0
            if self.kind is Kind.CONSENTS:
                stored = self._consents(conn, batch.good, now)
            else:
                stored, changed = self._rows(conn, batch.good, now)
            entries = batch.entries
            landed = ((r.record_id, r.payload) for r in batch.good)
            reread = (entries[r.line_no] for r in batch.good if r.line_no in entries)
            closed = close_landed(conn, self.source_id, self.kind, landed, now, reread)
            new_bad = self._quarantine(conn, batch.bad, now)
            if entries:
                self._still_bad(conn, batch.bad, entries, now)
            new_bad += self._quarantine_suppressed(conn, hidden, now)
            # Fields left out of the rows written now (not of duplicates, stored before):
            # listed with the quarantine (nothing is lost), one entry per field, not counted
            # as quarantined rows.
            left_out = [issue for issue in batch.dropped if issue.line_no in stored]
            self._quarantine(conn, left_out, now, per_field=True)
        return Counts(
            read=len(batch.good) + len(batch.bad) + len(hidden),
            stored=len(stored) - changed,
            changed=changed,
            duplicates=len(batch.good) - len(stored),
            quarantined=len(batch.bad) + len(hidden),
            quarantined_new=new_bad,
            fields_dropped=len(left_out),
            skipped=batch.skipped,
            closed=closed,
        )

    def _suppress(
        self, batch: NormalisedBatch, check: SuppressionCheck
    ) -> tuple[NormalisedBatch, list[tuple[int, str]]]:
        """Take the rows of erased persons out of the batch: (the rest, [(line, key)]); see
        :func:`custos.ingest.sink.suppressed`."""
        consents = self.kind is Kind.CONSENTS  # their record ids are not the rows' record ids
        noted = {issue.line_no for issue in batch.dropped}
        rest = NormalisedBatch()
        hidden: list[tuple[int, str]] = []
        for row in batch.good:
            key = suppressed(check, self.source, self.kind, row, left_out=row.line_no in noted)
            if key is None:
                rest.good.append(row)
            else:
                hidden.append((row.line_no, key))
        for bad in batch.bad:
            key = check(self.source, None if consents else bad.record_id, None, bad.raw)
            if key is None:
                rest.bad.append(bad)
            else:
                hidden.append((bad.line_no, key))
        gone = {line for line, _ in hidden}  # an erased person's fields are not kept either
        rest.dropped = [issue for issue in batch.dropped if issue.line_no not in gone]
        return rest, hidden

    def _quarantine_suppressed(
        self, conn: Connection, hidden: list[tuple[int, str]], now: datetime
    ) -> int:
        """Quarantine rows of erased persons: where they are and why, never their values."""
        entries: dict[str, dict[str, Any]] = {}
        for line_no, key in hidden:
            found = row_key(self.source, self.kind, f"suppressed\x1f{key}")
            if found not in entries:
                entries[found] = self._entry(found, line_no, None, now)
        return quarantine(self.store, conn, entries)

    def _entry(
        self, key: str, line_no: int, bad: Bad | None, now: datetime, left_out: bool = False
    ) -> dict[str, Any]:
        return sink.entry(
            key, self.source_id, self.kind, self.file_name, now, line_no, bad, left_out=left_out
        )

    def _rows(self, conn: Connection, good: list[Good], now: datetime) -> tuple[set[int], int]:
        """Store the rows not stored before, and the changed ones as new versions of their
        records; (the line numbers of those written, how many of them were changed).

        One look-up per batch finds the record ids stored before with their payload (the row
        as received): the same payload is an unchanged row (nothing to do), another one a new
        version (see :func:`custos.ingest.versions.replace`)."""
        fresh: dict[str, Good] = dict(zip(map(_record_id, good), good, strict=True))
        if len(fresh) < len(good):  # an id repeats within the batch: its first row wins
            fresh = {}
            for row in good:
                fresh.setdefault(row.record_id, row)
        changed: dict[int, Good] = {}
        for record_id, raw_id, payload in self.store.existing_keys(
            conn,
            t.raw_records.c.record_id,
            list(fresh),
            (t.raw_records.c.source_id, self.source_id),
            also=(t.raw_records.c.id, t.raw_records.c.payload),
        ):
            row = fresh.pop(record_id)
            if row.payload != payload:
                changed[int(raw_id)] = row
        if changed:
            versions.replace(self.store, conn, self.kind, self.file_name, changed, now)
        written = {r.line_no for r in changed.values()}
        if not fresh:
            return written, len(changed)
        next_id = self.store.next_id(conn, t.raw_records, len(fresh))
        ids = range(next_id, next_id + len(fresh))
        rows = list(fresh.values())
        self.store.insert_many(
            conn,
            t.raw_records,
            [(i, r.record_id, r.line_no, r.payload) for i, r in zip(ids, rows, strict=True)],
            names=("id", "record_id", "line_no", "payload"),
            const={
                "source_id": self.source_id,
                "kind": self.kind.value,
                "file_name": self.file_name,
                "ingested_at": now,
            },
        )
        target: Table = t.records if self.kind is Kind.RECORDS else t.interactions
        self.store.insert_many(
            conn,
            target,
            [(i, *r.values) for i, r in zip(ids, rows, strict=True)],
            names=("raw_id", *COLUMNS[self.kind]),
            const={"source_id": self.source_id, "observed_at": now},
        )
        return written | {r.line_no for r in rows}, len(changed)

    def _consents(self, conn: Connection, good: list[Good], now: datetime) -> set[int]:
        """Store the consent events not stored before; the line numbers of those stored."""
        fresh: dict[str, Good] = {}
        for row in good:
            fresh.setdefault(consent_key(self.source, row.values), row)
        for known in self.store.existing_keys(conn, t.consent_events.c.event_key, list(fresh)):
            del fresh[known]
        rows = [
            {
                **row.values,
                "event_key": key,
                "record_id": row.record_id or None,
                "source_id": self.source_id,
                "file_name": self.file_name,
                "line_no": row.line_no,
                "payload": row.payload,
                "ingested_at": now,
            }
            for key, row in fresh.items()
        ]
        self.store.insert_many(conn, t.consent_events, rows)
        return {row.line_no for row in fresh.values()}

    def _row_key(self, row: Bad, per_field: bool = False) -> str:
        # A quarantined row is one entry (keyed by its content); a row stored without fields
        # has one entry per field left out.
        tail = f"\x1f{row.field}" if per_field else ""
        return row_key(self.source, self.kind, f"{row.raw}{tail}")

    def _still_bad(
        self, conn: Connection, bad: list[Bad], entries: dict[int, int], now: datetime
    ) -> None:
        """Rows re-read from quarantine entries that are bad still: the entry of the same row
        takes the reason found now; an entry whose row came back changed (fixed by hand, bad
        in another way) is closed, the row waits under its new entry."""
        for row in bad:
            entry = entries.get(row.line_no)
            if entry is None:
                continue
            key = self._row_key(row)
            open_entry = (t.quarantine.c.id == entry) & (t.quarantine.c.source_id == self.source_id)
            open_entry &= t.quarantine.c.closed_at.is_(None)
            conn.execute(
                t.quarantine.update()
                .where(open_entry, t.quarantine.c.row_key == key)
                .values(reason=row.reason, fix=row.fix, field=row.field)
            )
            conn.execute(
                t.quarantine.update()
                .where(open_entry, t.quarantine.c.row_key != key)
                .values(closed_at=now)
            )

    def _quarantine(
        self, conn: Connection, bad: list[Bad], now: datetime, *, per_field: bool = False
    ) -> int:
        entries: dict[str, dict[str, Any]] = {}
        for row in bad:
            key = self._row_key(row, per_field)
            if key not in entries:
                entries[key] = self._entry(key, row.line_no, row, now, per_field)
        return quarantine(self.store, conn, entries)
