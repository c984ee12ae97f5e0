"""Benchmark: PostgreSQL's bulk paths: COPY against row inserts, and end to end against SQLite.

Data: N synthetic people from ``../shared/benchdata/gen_people.py`` (the Parquet files of
``bench/identity.py``, cached under bench/data/). Two measurements, each run in its own
process on a fresh store (a throw-away PostgreSQL per run, started like the tests' one with
``custos.store.pgserver`` and stopped after):

1. ingestion into PostgreSQL with COPY (what custos does) and with row inserts, two ways: one
   INSERT statement per row (what an ORM adding rows one by one sends) and psycopg's pipelined
   ``executemany`` (custos's path before COPY); forced through a private flag of the PostgreSQL
   store, for this bench only;
2. ingest → resolve → guarded export (every profile ``customer_service`` may see) on SQLite and
   on PostgreSQL, with the pairwise F1 of the clusters against the truth (both backends must
   give the same profiles).

    python bench/postgres.py [--rows 100000,1000000] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.identity import _custos_parquet, _truth, dataset  # noqa: E402
from bench.report import write_section  # noqa: E402
from bench.stores import fresh_store  # noqa: E402

PURPOSE = "customer_service"  # contract basis: every profile may be exported
NOTE = (
    "Why COPY gains less against batched rows: psycopg's pipelined `executemany` already sends "
    "rows without a round trip each, both paths leave the server the same work per row (foreign-key "
    "checks, unique indexes, the statistics refreshed as tables grow, all counted in "
    "*inserting*), and COPY's client still formats every value in Python. Ingestion also reads "
    "and normalises every row, which COPY does not change. End to end, resolution is the larger "
    "part of PostgreSQL's extra time (reading its snapshot and rewriting the profile tables; "
    "not broken down here)."
)


def child(task: str, url: str, path: Path, parquet: Path, engine: str = "duckdb") -> dict[str, Any]:
    """Run ``task`` (``copy``, ``rows`` or ``e2e``) on the store at ``url``, in this process
    (``engine``: where a resolution scores its pairs; Spark works in a temporary folder)."""
    from custos.core.settings import Settings
    from custos.process import paused_gc
    from custos.service import Custos
    from custos.store.postgres import PostgresStore

    phases: dict[str, float] = {}
    if task in ("rows", "statements"):  # for this comparison only
        PostgresStore._row_inserts = "batched" if task == "rows" else "statements"
    if task in ("copy", "rows", "statements"):
        # one process, so the time spent inserting (client and server) is measured here
        settings = Settings(db=url, default_region="US", workers=1)
        insert = PostgresStore._bulk_insert
        phases["insert"] = 0.0

        def timed(self: PostgresStore, *args: Any) -> None:
            clock = time.perf_counter()
            insert(self, *args)
            phases["insert"] += time.perf_counter() - clock

        PostgresStore._bulk_insert = timed  # type: ignore[method-assign,assignment]
    else:
        # (removed at the end; CUSTOS_BENCH_ENGINE_LOCATION names the folder a failed run left,
        # to resume it: the phases it finished are read back, as `custos resolve` resumes)
        work = os.environ.get("CUSTOS_BENCH_ENGINE_LOCATION") or tempfile.mkdtemp(
            prefix="custos-bench-engine-"
        )
        settings = Settings(db=url, default_region="US", engine=engine, engine_location=work)
    result: dict[str, Any] = {}
    with Custos.open(url, settings) as app:
        clock = time.perf_counter()
        summary = app.ingest(path, "people", actor="bench")
        phases["ingest"] = time.perf_counter() - clock
        result["stored"] = summary.stored
        if task == "e2e":
            clock = time.perf_counter()
            with paused_gc():  # as `custos resolve` runs it
                resolved = app.resolve(actor="bench")
            phases["resolve"] = time.perf_counter() - clock
            result["resolve_phases"] = resolved.phases
            result["profiles"] = resolved.profiles
            clock = time.perf_counter()
            exported = sum(1 for _ in app.export_profiles(PURPOSE, actor="bench"))
            phases["export"] = time.perf_counter() - clock
            result["exported"] = exported
            predicted = {int(r): p for _, r, p in app.xref()}
    if task == "e2e":
        import pyarrow.parquet as pq

        from custos.identity.metrics import pairwise_scores

        truth = _truth(pq.read_table(parquet))
        scores = pairwise_scores({r: predicted.get(r) for r in truth}, truth)
        result["f1"], result["precision"], result["recall"] = (
            scores.f1,
            scores.precision,
            scores.recall,
        )
    if task not in ("copy", "rows", "statements"):
        shutil.rmtree(work, ignore_errors=True)
    result["phases"] = phases
    result["seconds"] = sum(v for k, v in phases.items() if k != "insert")
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def run(task: str, backend: str, path: Path, parquet: Path) -> dict[str, Any]:
    """One task on a fresh store of ``backend``, in a fresh process."""
    with fresh_store(backend) as url:
        out = subprocess.run(
            [sys.executable, __file__, "--child", task, url, str(path), str(parquet)],
            check=True,
            capture_output=True,
            text=True,
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["load"] = os.getloadavg()[0]
    return result


def main() -> None:
    """Parse arguments, run both measurements, print and record the tables."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        task, url, file, truth = sys.argv[2:6]
        print(json.dumps(child(task, url, Path(file), Path(truth))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    copy_rows = [
        "| records | inserting: COPY s | row statements s | speed-up | batched rows s | "
        "speed-up | ingestion: COPY s | row statements s | speed-up | batched rows s | "
        "speed-up | COPY records/s | load avg (COPY, statements, batched) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    e2e_rows = [
        "| records | backend | ingest s | resolve s | export s | total s | PG/SQLite | "
        "profiles exported | F1 | peak RSS | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in (int(n) for n in args.rows.split(",")):
        parquet = dataset(f"people:{size}")
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory(prefix="custos-bench-data-") as tmp:
            path = _custos_parquet(pq.read_table(parquet), Path(tmp) / "people.parquet")
            copied = run("copy", "postgresql", path, parquet)
            single = run("statements", "postgresql", path, parquet)
            rows = run("rows", "postgresql", path, parquet)
            line = f"| {size:,} "
            for phase in ("insert", "ingest"):
                c, s, b = (r["phases"][phase] for r in (copied, single, rows))
                line += f"| {c:.1f} | {s:.1f} | {s / c:.1f}× | {b:.1f} | {b / c:.1f}× "
            line += (
                f"| {size / copied['phases']['ingest']:,.0f} | {copied['load']:.1f}, "
                f"{single['load']:.1f}, {rows['load']:.1f} |"
            )
            copy_rows.append(line)
            print(line, flush=True)
            lite = run("e2e", "sqlite", path, parquet)
            pg = run("e2e", "postgresql", path, parquet)
            for backend, r in (("sqlite", lite), ("postgresql", pg)):
                p = r["phases"]
                ratio = f"{pg['seconds'] / lite['seconds']:.2f}×" if backend == "postgresql" else ""
                line = (
                    f"| {size:,} | {backend} | {p['ingest']:.1f} | {p['resolve']:.1f} | "
                    f"{p['export']:.1f} | {r['seconds']:.1f} | {ratio} | {r['exported']:,} | "
                    f"{r['f1']:.4f} | {max(r['rss_mb'], r['rss_children_mb']):.0f} MB | "
                    f"{r['load']:.1f} |"
                )
                e2e_rows.append(line)
                print(line, flush=True)
    body = "\n".join(
        [
            "Synthetic people from `../shared/benchdata/gen_people.py` (Parquet, seed 42), "
            "default settings but `default_region=US`; each run in its own process on a fresh "
            "store; PostgreSQL is a throw-away local server (`custos.store.pgserver`, as the "
            "tests start it: fsync and synchronous commit off) on the same 2 cores. The machine "
            "is shared with other jobs: the load average (1 min) after each run is shown.",
            "",
            "Ingestion into PostgreSQL: every bulk insert goes through `COPY` (custos) against "
            "row inserts, two ways (forced for this bench only): one INSERT statement per row, "
            "a round trip each (what an ORM adding rows one by one sends), and psycopg's "
            "pipelined `executemany` (custos's path before COPY), in one process (`workers=1`). *Inserting*: the time spent in the bulk inserts, "
            "client and server (raw rows, records, quarantine); *ingestion*: the whole run, "
            "which also reads and normalises every row in Python. Target: COPY at least 3× "
            "faster.",
            "",
            *copy_rows,
            "",
            "End to end: ingest → resolve (trains the model, scores, clusters, writes profiles, "
            "members, evidence, golden records, identifiers) → guarded export of every profile "
            f"`{PURPOSE}` may see. Target: PostgreSQL within 1.5× of SQLite at 1 million.",
            "",
            *e2e_rows,
            "",
            NOTE,
        ]
    )
    print(body)
    if not args.no_record:
        write_section(
            "postgres", ("python bench/postgres.py " + " ".join(sys.argv[1:])).strip(), body
        )


if __name__ == "__main__":
    main()
