"""Benchmark: file ingestion, CSV → normalised store, on SQLite and PostgreSQL.

Makes N synthetic person records with the package's generator (cached under bench/data/),
ingests them into a fresh store per backend (each in its own process, so peak memory is its
own), prints a table and writes it to BENCHMARKS.md.

    python bench/ingest.py [--rows 200000,1000000] [--backends sqlite,postgresql] [--workers 0]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from bench.stores import fresh_store  # noqa: E402
from custos.core.settings import Settings  # noqa: E402
from custos.synthetic import write_people_csv  # noqa: E402

DATA = ROOT / "bench" / "data"
TARGET = 50_000


def dataset(rows: int, seed: int) -> Path:
    """The CSV of ``rows`` synthetic people (made once, then reused)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"people_{rows}_{seed}.csv"
    if not path.exists():
        started = time.perf_counter()
        write_people_csv(path.with_suffix(".tmp"), rows, seed=seed)
        path.with_suffix(".tmp").rename(path)
        print(f"generated {rows:,} records in {time.perf_counter() - started:.1f} s → {path}")
    return path


def child(url: str, path: Path, workers: int, batch_size: int) -> dict[str, float]:
    """Ingest ``path`` into the store at ``url`` (in this process) and report the figures."""
    from custos.service import Custos

    settings = Settings(db=url, workers=workers, batch_size=batch_size)
    with Custos.open(url, settings) as app:
        started = time.perf_counter()
        summary = app.ingest(path, "people", actor="bench")
        seconds = time.perf_counter() - started
        rss_main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stats = app.stats()
    return {
        "read": summary.read,
        "stored": summary.stored,
        "quarantined": summary.quarantined,
        "records_in_store": stats["records"],
        "seconds": seconds,
        "rate": summary.read / seconds,
        "rss_main_mb": rss_main,
        "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def run_backend(backend: str, path: Path, workers: int, batch_size: int) -> dict[str, float]:
    """Run one backend in a fresh process, on a fresh store."""
    with fresh_store(backend) as url:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                url,
                str(path),
                str(workers),
                str(batch_size),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Parse arguments, run the backends, print and record the table."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        url, path, workers, batch = (
            sys.argv[2],
            Path(sys.argv[3]),
            int(sys.argv[4]),
            int(sys.argv[5]),
        )
        print(json.dumps(child(url, path, workers, batch)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", default="200000,1000000", help="comma-separated sizes (memory must stay flat)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=0, help="0: custos picks (one per core)")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    lines = [
        f"Input: synthetic person records from `custos.synthetic.write_people_csv` (CSV, ~1.9 records "
        f"per person, messy formats), workers={args.workers or 'auto'}, batch size {args.batch_size:,}. "
        f"Target: at least {TARGET:,} records/s on SQLite, memory bounded (flat as the file grows).",
        "",
        "| backend | records | CSV | stored | quarantined | seconds | records/s | peak RSS main | peak RSS worker |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rows in sizes:
        path = dataset(rows, args.seed)
        size_mb = path.stat().st_size / 1e6
        for backend in args.backends.split(","):
            r = run_backend(backend, path, args.workers, args.batch_size)
            row = (
                f"| {backend} | {int(r['read']):,} | {size_mb:.0f} MB | {int(r['stored']):,} | "
                f"{int(r['quarantined']):,} | {r['seconds']:.1f} | {r['rate']:,.0f} | "
                f"{r['rss_main_mb']:.0f} MB | {r['rss_worker_mb']:.0f} MB |"
            )
            lines.append(row)
            print(row, flush=True)
    lines += [
        "",
        "Memory: the main process only cuts the file into byte chunks; each worker holds one batch, "
        "caches with a fixed cap (normal forms of names, places, phones, birth dates) and SQLite's page cache "
        "(128 MiB cap), so peak RSS stays flat as the file grows.",
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        command = "python bench/ingest.py " + " ".join(sys.argv[1:])
        write_section("ingest", command.strip(), table)


if __name__ == "__main__":
    main()
