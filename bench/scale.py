"""Benchmark: scale. Ingest → resolve → guarded export of N synthetic people on two set-ups,
(a) SQLite + DuckDB (in process) and (b) PostgreSQL + Spark ``local[2]``: wall time per phase,
peak memory of the whole process tree (custos, and Spark's JVM and Python workers), the
pairwise F1 of the clusters against the truth, and how each phase grows with N.

Data: ``../shared/benchdata/gen_people.py`` (the Parquet files of ``bench/identity.py``, cached
under bench/data/). Each run is its own process on a fresh store (PostgreSQL: a throw-away
server, as ``bench/postgres.py`` starts it); the resolution trains its model on a 150,000-record
sample with DuckDB on both set-ups and scores the pairs on the set-up's engine.

    python bench/scale.py [--rows 1000000,3000000] [--setups sqlite+duckdb,postgresql+spark]
                          [--no-record]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.identity import _custos_parquet, dataset  # noqa: E402
from bench.postgres import child  # noqa: E402
from bench.report import write_section  # noqa: E402
from bench.stores import fresh_store  # noqa: E402

#: Resolution phases shown (custos's own names; the rest are summed into "write").
SHOWN = ("load", "train", "exact", "predict", "cluster")


def tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants, from /proc."""
    total, stack, seen = 0, [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack.extend(int(c) for c in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run(setup: str, path: Path, parquet: Path) -> dict[str, Any]:
    """One end-to-end run of ``setup`` (``backend+engine``) in a fresh process, its process
    tree's memory sampled twice a second."""
    backend, engine = setup.split("+")
    with fresh_store(backend) as url:
        command = [sys.executable, __file__, "--child", engine, url, str(path), str(parquet)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        peak = [0]

        def sample() -> None:
            while process.poll() is None:
                peak[0] = max(peak[0], tree_rss(process.pid))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, _ = process.communicate()
        sampler.join()
        if process.returncode != 0:
            raise SystemExit(f"{setup} failed (exit {process.returncode})")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = peak[0] / 2**20
    result["load_avg"] = os.getloadavg()[0]
    return result


def growth(rows: list[tuple[int, float]]) -> str:
    """How time grows with N between the smallest and the largest run: the exponent k of
    time ~ N^k (1.0 is linear)."""
    (n1, t1), (n2, t2) = rows[0], rows[-1]
    if n1 == n2 or t1 <= 0:
        return ""
    return f"{math.log(t2 / t1) / math.log(n2 / n1):.2f}"


def main() -> None:
    """Parse arguments, run every size on every set-up, print and record the table."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, url, file, truth = sys.argv[2:6]
        print(json.dumps(child("e2e", url, Path(file), Path(truth), engine=engine)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,3000000", help="comma-separated sizes")
    parser.add_argument("--setups", default="sqlite+duckdb,postgresql+spark")
    parser.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    setups = args.setups.split(",")
    header = [
        "| records | set-up | ingest s | load s | train s | exact s | predict s | cluster s | "
        "write s | resolve s | export s | total s | peak memory | profiles | precision | recall | F1 | "
        "load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines = list(header)
    totals: dict[str, list[tuple[int, float]]] = {s: [] for s in setups}
    predicts: dict[str, list[tuple[int, float]]] = {s: [] for s in setups}
    import pyarrow.parquet as pq

    for size in sizes:
        parquet = dataset(f"people:{size}")
        with tempfile.TemporaryDirectory(prefix="custos-bench-data-") as tmp:
            path = _custos_parquet(pq.read_table(parquet), Path(tmp) / "people.parquet")
            for setup in setups:
                r = run(setup, path, parquet)
                p, rp = r["phases"], r["resolve_phases"]
                shown = [rp.get(k, 0.0) for k in SHOWN]
                write = p["resolve"] - sum(shown)
                line = (
                    f"| {size:,} | {setup} | {p['ingest']:.1f} | "
                    + " | ".join(f"{v:.1f}" for v in shown)
                    + f" | {write:.1f} | {p['resolve']:.1f} | {p['export']:.1f} | "
                    f"{r['seconds']:.1f} | {r['peak_mb']:,.0f} MB | {r['profiles']:,} | "
                    f"{r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | "
                    f"{r['load_avg']:.1f} |"
                )
                lines.append(line)
                print(line, flush=True)
                totals[setup].append((size, r["seconds"]))
                predicts[setup].append((size, rp.get("predict", 0.0)))
    grow = [
        "| set-up | end to end: time ~ N^k | scoring (predict): time ~ N^k |",
        "|---|---:|---:|",
    ]
    grow += [f"| {s} | {growth(totals[s])} | {growth(predicts[s])} |" for s in setups]
    body = "\n".join(
        [
            "Synthetic people from `../shared/benchdata/gen_people.py` (seed 42), default "
            "settings but `default_region=US`; each run in its own process on a fresh store "
            "(PostgreSQL: a throw-away local server, fsync off, on the same 2 cores). Phases of "
            "the resolution as custos names them; *write* is the rest of it (profiles, members, "
            "evidence, golden records, consent states). Peak memory: the whole process tree "
            "(custos, PostgreSQL's server not included; Spark's JVM and Python workers "
            "included), sampled twice a second. The machine is shared: the load average "
            "(1 min) after each run is shown.",
            "",
            *lines,
            "",
            "Growth between the smallest and the largest size:",
            "",
            *grow,
        ]
    )
    print(body)
    if not args.no_record:
        write_section("scale", ("python bench/scale.py " + " ".join(sys.argv[1:])).strip(), body)


if __name__ == "__main__":
    main()
