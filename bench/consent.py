"""Benchmark: guarded profile export and consent look-ups (issue 4 targets).

Builds a store with N profiles (golden records, identifiers) and a consent ledger for one
purpose, directly through the store's bulk inserts (this measures reading, not resolving), then
times an unguarded export of every profile (the same rows, no guard, the baseline) against the
guarded `export_profiles` for that purpose, and the current-state look-up of single persons.

    python bench/consent.py [--profiles 1000000] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from custos.consent.guard import Guard  # noqa: E402
from custos.core.settings import Settings  # noqa: E402
from custos.service import Custos  # noqa: E402
from custos.service.reads import _grouped  # noqa: E402
from custos.store import golden  # noqa: E402
from custos.store import tables as t  # noqa: E402
from custos.store.golden import GoldenValue  # noqa: E402

PURPOSE = "marketing_email"
CHUNK = 50_000


def build(app: Custos, profiles: int, seed: int) -> None:
    """Fill the store: profiles, 5 golden attributes and 2 identifiers each, one consent stream
    per person for PURPOSE (90% granted, 5% withdrawn later, 5% never asked)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with app.store.write() as conn:
        conn.execute(t.sources.insert().values(name="crm", kind="records", created_at=now))
        source_id = conn.execute(t.sources.select()).first().id  # type: ignore[union-attr]
    for start in range(0, profiles, CHUNK):
        ids = [f"cus_{i:016x}" for i in range(start, min(start + CHUNK, profiles))]
        rows_p, rows_a, rows_i, rows_c = [], [], [], []
        for n, pid in enumerate(ids, start):
            email, phone = f"person{n}@example.com", f"+4930{n:08d}"
            rows_p.append((pid, "active", None, now, now))
            values = (
                ("first_name", f"First{n % 5000}"),
                ("last_name", f"Last{n % 20000}"),
                ("email", email),
                ("phone", phone),
                ("city", f"City{n % 300}"),
            )
            rows_a.append(
                (
                    pid,
                    golden.encode(
                        [GoldenValue(a, v, "crm", f"r{n}", now, "priority") for a, v in values]
                    ),
                )
            )
            rows_i += [("email", email, pid), ("phone", phone, pid)]
            roll = rng.random()
            if roll < 0.95:
                rows_c.append(
                    (
                        n * 2 + 1,
                        source_id,
                        f"k{n}a",
                        email,
                        PURPOSE,
                        "granted",
                        now - timedelta(days=30),
                        False,
                        "{}",
                        now,
                    )
                )
            if 0.90 <= roll < 0.95:
                rows_c.append(
                    (
                        n * 2 + 2,
                        source_id,
                        f"k{n}b",
                        email,
                        PURPOSE,
                        "withdrawn",
                        now - timedelta(days=1),
                        False,
                        "{}",
                        now,
                    )
                )
        with app.store.write() as conn:
            app.store.insert_many(
                conn,
                t.profiles,
                rows_p,
                names=("id", "status", "merged_into", "created_at", "updated_at"),
            )
            app.store.insert_many(
                conn,
                t.profile_golden,
                rows_a,
                names=("profile_id", "document"),
            )
            app.store.insert_many(
                conn, t.profile_identifiers, rows_i, names=("kind", "value", "profile_id")
            )
            app.store.insert_many(
                conn,
                t.consent_events,
                rows_c,
                names=(
                    "id",
                    "source_id",
                    "event_key",
                    "email",
                    "purpose",
                    "status",
                    "timestamp",
                    "explicit",
                    "payload",
                    "ingested_at",
                ),
            )
        print(f"  built {min(start + CHUNK, profiles):,} profiles", end="\r", flush=True)
    print()


def unguarded_export(app: Custos, sink: io.StringIO) -> int:
    """The baseline: the same rows, read and written the same way, with no guard at all."""
    count = 0
    with app.store.read() as conn:
        documents = golden.documents(conn)
        identifiers = _grouped(
            conn.execution_options(yield_per=20_000).execute(
                t.profile_identifiers.select()
                .order_by(
                    t.profile_identifiers.c.profile_id,
                    t.profile_identifiers.c.kind,
                    t.profile_identifiers.c.value,
                )
                .with_only_columns(
                    t.profile_identifiers.c.profile_id,
                    t.profile_identifiers.c.kind,
                    t.profile_identifiers.c.value,
                )
            )
        )
        for (pid, document), (_, idents) in zip(documents, identifiers, strict=True):
            item: dict[str, Any] = {"profile_id": pid, **golden.values(document)}
            shown: dict[str, list[str]] = {}
            for _, kind, value in idents:
                shown.setdefault(kind, []).append(value)
            item["identifiers"] = shown
            sink.write(orjson.dumps(item).decode() + "\n")
            count += 1
    return count


def timed(fn: Any, *args: Any, repeat: int = 1) -> tuple[float, Any]:
    """(seconds, result): the fastest of ``repeat`` calls."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    """Build, measure, print and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="custos-bench-") as tmp:
        server = None
        if args.backend == "sqlite":
            url = str(Path(tmp) / "consent.db")
        else:
            from custos.store.pgserver import PostgresServer

            server = PostgresServer()
            url = server.new_database()
        try:
            with Custos.open(url, Settings(db=url)) as app:
                build_s, _ = timed(build, app, args.profiles, args.seed)
                base_s, base_n = timed(lambda: unguarded_export(app, io.StringIO()), repeat=3)

                def guarded() -> int:
                    sink = io.StringIO()
                    n = 0
                    for item in app.export_profiles(PURPOSE, actor="bench"):
                        sink.write(orjson.dumps(item).decode() + "\n")
                        n += 1
                    return n

                cold_s, _ = timed(guarded)  # nothing materialised yet: derived from the ledger
                refresh_s, _ = timed(app.refresh_consent, None)  # what resolve/ingest do
                guard_s, guard_n = timed(guarded, repeat=3)
                rng = random.Random(1)
                samples = []
                guard = Guard(app.taxonomy)
                with app.store.read() as conn:
                    for _ in range(300):
                        pid = f"cus_{rng.randrange(args.profiles):016x}"
                        started = time.perf_counter()
                        guard.access(conn, PURPOSE, [pid])
                        samples.append((time.perf_counter() - started) * 1000)
        finally:
            if server is not None:
                server.stop()
    ratio = guard_s / base_s  # both the fastest of three runs
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[18]
    table = "\n".join(
        [
            f"{args.profiles:,} profiles (5 golden attributes, 2 identifiers each) and one consent stream per person "
            f"for `{PURPOSE}` (95% granted, 5% of them withdrawn later); backend {args.backend}. "
            "Targets: guarded export at most 1.5x the unguarded export of the same rows; current-state "
            "look-up of one person under 5 ms median. Export times are the fastest of three runs.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| unguarded export (baseline, all rows) | {base_s:.1f} s, {base_n:,} profiles |",
            f"| guarded export for `{PURPOSE}` (states materialised, incl. audit entry) | {guard_s:.1f} s, {guard_n:,} profiles |",
            f"| guarded / unguarded | {ratio:.2f}x |",
            f"| guarded export before the states are materialised (cold) | {cold_s:.1f} s ({cold_s / base_s:.2f}x) |",
            f"| materialising the states (done by resolve and by consent ingestion) | {refresh_s:.1f} s |",
            f"| consent state of one person, median | {median:.2f} ms |",
            f"| consent state of one person, p95 | {p95:.2f} ms |",
            f"| building the store (not a target) | {build_s:.0f} s |",
        ]
    )
    print(table)
    if not args.no_record:
        write_section(
            f"consent ({args.backend})", "python bench/consent.py " + " ".join(sys.argv[1:]), table
        )


if __name__ == "__main__":
    main()
