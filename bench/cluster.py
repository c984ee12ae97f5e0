"""Benchmark: the Spark engine on a simulated cluster. A standalone Spark master and two workers
(one core each) are started on this machine from pyspark's own ``spark-class``; each size is
resolved end to end (SQLite store, ingest → resolve → guarded export) with
``--spark-master spark://…``, so the cluster code path (master URL, shared Parquet location,
executors in their own JVMs) runs for real. Spark's event log gives how the scoring phase splits
between the driver and the executors.

    python bench/cluster.py [--rows 100000,300000] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.identity import _custos_parquet, dataset  # noqa: E402
from bench.report import write_section  # noqa: E402
from bench.scale import run  # noqa: E402

WORKERS = 2
WORKER_MEMORY = "3g"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a Spark daemon with its output in ``log`` (the child keeps its own handle)."""
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def start_cluster(work: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A standalone master and :data:`WORKERS` workers on this machine; their URL and processes."""
    port, ui = _free_port(), _free_port()
    env = {**os.environ, "SPARK_LOG_DIR": str(work / "logs")}
    spark_class = str(_spark_class())
    url = f"spark://127.0.0.1:{port}"
    master = [spark_class, "org.apache.spark.deploy.master.Master"]
    master += ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)]
    processes = [_spawn(master, work / "master.log", env)]
    for i in range(WORKERS):
        folder = work / f"worker{i}"
        folder.mkdir()
        worker = [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--cores", "1"]
        worker += ["--memory", WORKER_MEMORY, "--work-dir", str(folder)]
        worker += ["--webui-port", str(_free_port())]
        processes.append(_spawn(worker, work / f"worker{i}.log", env))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as r:
                if json.load(r).get("aliveworkers", 0) >= WORKERS:
                    return url, processes
        except OSError:
            pass
        time.sleep(1)
    stop_cluster(processes)
    raise SystemExit("the standalone Spark cluster did not come up (see its logs)")


def stop_cluster(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop the workers, then the master."""
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def executor_split(events: Path) -> dict[str, float]:
    """From an (uncompressed, rolling) Spark event log under ``events``: seconds during which jobs ran on the executors
    (the union of the jobs' spans), executor run time summed over tasks, its JVM CPU part, and
    the run time of the busiest executor."""
    jobs: dict[int, list[int]] = {}
    run_ms = cpu_ns = 0
    per_executor: dict[str, int] = {}
    for log in sorted(events.rglob("events_*")):  # (Spark 4: eventlog_v2_*/events_N_*)
        with open(log) as f:
            for line in f:
                event = json.loads(line)
                kind = event["Event"]
                if kind == "SparkListenerJobStart":
                    jobs[event["Job ID"]] = [event["Submission Time"], event["Submission Time"]]
                elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
                    jobs[event["Job ID"]][1] = event["Completion Time"]
                elif kind == "SparkListenerTaskEnd":
                    metrics = event.get("Task Metrics") or {}
                    run_ms += metrics.get("Executor Run Time", 0)
                    cpu_ns += metrics.get("Executor CPU Time", 0)
                    executor = event["Task Info"]["Executor ID"]
                    per_executor[executor] = per_executor.get(executor, 0) + metrics.get(
                        "Executor Run Time", 0
                    )
    busy, current = 0, None
    for start, end in sorted(jobs.values()):
        if current and start <= current[1]:
            current[1] = max(current[1], end)
        else:
            if current:
                busy += current[1] - current[0]
            current = [start, end]
    if current:
        busy += current[1] - current[0]
    return {
        "busy_s": busy / 1000,
        "run_s": run_ms / 1000,
        "cpu_s": cpu_ns / 1e9,
        "busiest_s": max(per_executor.values(), default=0) / 1000,
    }


def extrapolation(rows: list[tuple[int, float]]) -> str:
    """A paper estimate of scoring 100 million records from (records, scoring s) of the smallest
    and the largest run: a fixed part and a part per record (small runs are
    dominated by the fixed part, so a power law fitted to them would understate the growth)."""
    if len(rows) < 2:
        return ""
    (n1, p1), (n2, p2) = rows[0], rows[-1]
    per = (p2 - p1) / (n2 - n1)
    fixed = p1 - per * n1
    at = fixed + per * 1e8
    return (
        f"\n\nScoring took about {fixed:.0f} s fixed (sessions, planning, small jobs) plus "
        f"{per * 1e6:.0f} s per million records. Linear from there, 100 million records would "
        f"take about {at / 3600:.1f} hours of scoring on these {WORKERS} one-core workers, and "
        f"about {WORKERS} / W of the per-record part on W cores; that is a lower bound, since "
        "scoring grows a little faster than linearly (Spark `local[2]`: N^1.07 from 1 to 3 "
        'million, BENCHMARKS.md "scale").'
    )


def describe(lines: list[str], extra: str) -> str:
    """The section's text: the set-up, the table and the estimate."""
    return (
        f"A standalone Spark master and {WORKERS} workers (1 core, {WORKER_MEMORY} each; "
        "executors 2 GB) on this machine, started by the benchmark from pyspark's "
        "`spark-class`; the driver is the custos process (SQLite store, training on DuckDB). "
        "*Executors busy*: the time during which Spark jobs ran (from the event log); "
        "*driver*: the rest of the scoring phase (planning, Splink's SQL, reading the results "
        "back). *Executor run time* is summed over tasks; the part that is not JVM CPU is "
        "mostly the Python workers of the string-similarity functions and shuffle I/O.\n\n"
        + "\n".join(lines)
        + extra
    )


def main() -> None:
    """Start the cluster, resolve every size on it, print and record the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,300000", help="comma-separated sizes")
    parser.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    import pyarrow.parquet as pq

    work = Path(tempfile.mkdtemp(prefix="custos-bench-cluster-"))
    url, processes = start_cluster(work)
    lines = [
        "| records | resolve s | of it, scoring s | executors busy s | driver s | executor run s "
        "| of it, JVM CPU s | busiest executor s | profiles | F1 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows: list[tuple[int, float]] = []
    try:
        for size in (int(n) for n in args.rows.split(",")):
            events = work / f"events-{size}"
            events.mkdir()
            os.environ["CUSTOS_SPARK_MASTER"] = url
            os.environ["PYSPARK_PYTHON"] = sys.executable  # (the executors' Python workers)
            os.environ["CUSTOS_SPARK_CONF"] = json.dumps(
                {
                    "spark.executor.memory": "2g",
                    "spark.eventLog.enabled": "true",
                    "spark.eventLog.compress": "false",
                    "spark.eventLog.dir": events.as_uri(),
                }
            )
            parquet = dataset(f"people:{size}")
            path = _custos_parquet(pq.read_table(parquet), work / f"people-{size}.parquet")
            r = run("sqlite+spark", path, parquet)
            predict = r["resolve_phases"].get("predict", 0.0)
            split = executor_split(events)
            driver = predict - split["busy_s"]
            line = (
                f"| {size:,} | {r['phases']['resolve']:.1f} | {predict:.1f} | "
                f"{split['busy_s']:.1f} | {driver:.1f} | {split['run_s']:.1f} | "
                f"{split['cpu_s']:.1f} | {split['busiest_s']:.1f} | {r['profiles']:,} | "
                f"{r['f1']:.4f} |"
            )
            lines.append(line)
            print(line, flush=True)
            rows.append((size, predict))
    finally:
        stop_cluster(processes)
        shutil.rmtree(work, ignore_errors=True)
    extra = extrapolation(rows)
    body = describe(lines, extra)
    print(body)
    if not args.no_record:
        write_section(
            "cluster", ("python bench/cluster.py " + " ".join(sys.argv[1:])).strip(), body
        )


if __name__ == "__main__":
    main()
