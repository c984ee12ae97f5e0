"""File ingestion: read → normalise (optionally in worker processes) → write, batch by batch.

Each batch is written in one transaction: raw rows, normalised rows and quarantine entries land
together or not at all. Re-ingesting a file stores nothing twice: records and interactions are
keyed by (source, record_id), consent events and quarantined rows by a content hash.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, select

from custos.core.errors import ConfigError
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.ingest.mapping import ColumnMap, MapFile
from custos.ingest.readers import RawRow, Reader, reader_for
from custos.ingest.rows import (
    COLUMNS,
    Bad,
    Good,
    NormalisedBatch,
    RowContext,
    consent_key,
    normalise_batch,
)
from custos.store import Store
from custos.store import tables as t

ProgressFn = Callable[[int, int], None]
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
_IN_CHUNK = 900  # ids per IN (...) list: below every backend's bound-parameter limit


@dataclass
class IngestSummary:
    """What one ingestion run did."""

    source: str
    kind: Kind
    file: str
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantined_new: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """False only when rows were there but none could be stored (nor were already stored)."""
        return self.stored + self.duplicates > 0 or (self.read == 0 and self.quarantined == 0)


def resolve_kind(store: Store, source: str, kind: Kind | None, map_file: MapFile) -> Kind:
    """The kind of a file: the option, else the map file, else the source's, else records."""
    if kind is not None:
        return kind
    if map_file.kind is not None:
        return map_file.kind
    with store.read() as conn:
        existing = conn.execute(select(t.sources.c.kind).where(t.sources.c.name == source)).scalar()
    return Kind(existing) if existing in (Kind.RECORDS, Kind.INTERACTIONS) else Kind.RECORDS


def ensure_source(conn: Connection, name: str, kind: Kind) -> int:
    """The id of source ``name``, created on first use; one source holds one kind of rows."""
    row = conn.execute(
        select(t.sources.c.id, t.sources.c.kind).where(t.sources.c.name == name)
    ).first()
    if row is None:
        now = datetime.now(UTC)
        conn.execute(t.sources.insert().values(name=name, kind=kind.value, created_at=now))
        return int(
            conn.execute(select(t.sources.c.id).where(t.sources.c.name == name)).scalar_one()
        )
    source_id, existing = int(row[0]), Kind(row[1])
    if kind is not Kind.CONSENTS and existing is not kind:
        if existing is Kind.CONSENTS:
            conn.execute(
                t.sources.update().where(t.sources.c.id == source_id).values(kind=kind.value)
            )
        else:
            raise ConfigError(
                f"source {name!r} holds {existing.value}, not {kind.value}",
                hint=f"ingest {kind.value} under another --source name",
            )
    return source_id


def ingest_file(
    store: Store,
    path: Path,
    source: str,
    *,
    settings: Settings,
    kind: Kind | None = None,
    map_path: Path | None = None,
    progress: ProgressFn | None = None,
) -> IngestSummary:
    """Ingest one file into ``source`` and return the summary (bad rows go to quarantine)."""
    started = time.perf_counter()
    map_file = MapFile.load(map_path) if map_path else MapFile()
    source = map_file.source if map_file.source and not source else source
    if not source:
        raise ConfigError("no source name", hint="pass --source NAME")
    kind = resolve_kind(store, source, kind, map_file)
    reader = reader_for(path, settings.batch_size)
    batches = reader.batches()
    first = next(batches, None)  # the header is known once the first batch is read
    cmap = ColumnMap(map_file, kind, reader.columns)
    ctx = RowContext(
        kind=kind,
        region=(map_file.default_country or settings.default_region).upper(),
        date_format=map_file.date_format,
        channel=map_file.channel,
    )
    summary = IngestSummary(source=source, kind=kind, file=path.name)
    with store.write() as conn:
        source_id = ensure_source(conn, source, kind)
    writer = _BatchWriter(store, source, source_id, kind, path.name, summary)
    raw_batches = _chain(first, batches)
    workers = _workers(settings, reader)
    for batch in _normalised(raw_batches, cmap, ctx, workers):
        writer.write(batch)
        if progress:
            progress(reader.position, reader.total)
    summary.seconds = time.perf_counter() - started
    return summary


def _chain(first: list[RawRow] | None, rest: Iterator[list[RawRow]]) -> Iterator[list[RawRow]]:
    if first is not None:
        yield first
        yield from rest


def _workers(settings: Settings, reader: Reader) -> int:
    if settings.workers:
        return settings.workers if settings.workers > 1 else 0
    if reader.path.stat().st_size < PARALLEL_MIN_BYTES:
        return 0
    return min(os.cpu_count() or 1, 4) if (os.cpu_count() or 1) > 1 else 0


def _normalised(
    batches: Iterator[list[RawRow]], cmap: ColumnMap, ctx: RowContext, workers: int
) -> Iterator[NormalisedBatch]:
    if workers == 0:
        for batch in batches:
            yield normalise_batch(batch, cmap, ctx)
        return
    # Bounded look-ahead: at most two batches per worker in flight, so memory stays flat.
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        pending: deque[Future[NormalisedBatch]] = deque()
        for batch in batches:
            pending.append(pool.submit(normalise_batch, batch, cmap, ctx))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _BatchWriter:
    """Writes normalised batches, each in its own transaction, and keeps the counts."""

    def __init__(
        self,
        store: Store,
        source: str,
        source_id: int,
        kind: Kind,
        file_name: str,
        summary: IngestSummary,
    ) -> None:
        self.store = store
        self.source = source
        self.source_id = source_id
        self.kind = kind
        self.file_name = file_name
        self.summary = summary

    def write(self, batch: NormalisedBatch) -> None:
        """Write one batch atomically."""
        self.summary.read += len(batch.good) + len(batch.bad)
        self.summary.quarantined += len(batch.bad)
        now = datetime.now(UTC)
        with self.store.write() as conn:
            if self.kind is Kind.CONSENTS:
                stored = self._consents(conn, batch.good, now)
            else:
                stored = self._rows(conn, batch.good, now)
            self.summary.stored += stored
            self.summary.duplicates += len(batch.good) - stored
            self.summary.quarantined_new += self._quarantine(conn, batch.bad, now)

    def _rows(self, conn: Connection, good: list[Good], now: datetime) -> int:
        fresh: dict[str, Good] = {}
        for row in good:
            fresh.setdefault(row.record_id, row)
        for known in _existing(
            conn,
            t.raw_records.c.record_id,
            list(fresh),
            t.raw_records.c.source_id == self.source_id,
        ):
            del fresh[known]
        if not fresh:
            return 0
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
        return len(rows)

    def _consents(self, conn: Connection, good: list[Good], now: datetime) -> int:
        fresh: dict[str, Good] = {}
        for row in good:
            fresh.setdefault(consent_key(self.source, row.values), row)
        for known in _existing(conn, t.consent_events.c.event_key, list(fresh)):
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
        return len(rows)

    def _quarantine(self, conn: Connection, bad: list[Bad], now: datetime) -> int:
        fresh: dict[str, Bad] = {}
        for row in bad:
            key = hashlib.sha256(
                f"{self.source}\x1f{self.kind.value}\x1f{row.raw}".encode()
            ).hexdigest()
            fresh.setdefault(key, row)
        for known in _existing(conn, t.quarantine.c.row_key, list(fresh)):
            del fresh[known]
        self.store.insert_many(
            conn,
            t.quarantine,
            [
                {
                    "row_key": key,
                    "source_id": self.source_id,
                    "kind": self.kind.value,
                    "file_name": self.file_name,
                    "line_no": row.line_no,
                    "record_id": row.record_id,
                    "field": row.field,
                    "reason": row.reason,
                    "fix": row.fix,
                    "raw": row.raw,
                    "created_at": now,
                }
                for key, row in fresh.items()
            ],
        )
        return len(fresh)


def _existing(conn: Connection, column: Any, values: list[str], *where: Any) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(values), _IN_CHUNK):
        chunk = values[i : i + _IN_CHUNK]
        found.update(conn.execute(select(column).where(column.in_(chunk), *where)).scalars())
    return found
