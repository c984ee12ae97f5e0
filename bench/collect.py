"""Benchmark: the Segment-compatible collection API, end to end over HTTP.

Starts ``custos serve`` (uvicorn, one process) on a fresh store, creates a write key, and posts
``--events`` track/identify calls in ``/v1/batch`` requests of ``--batch`` calls from
``--clients`` concurrent clients (gzip bodies, like RudderStack's client). Reports calls/s,
request latency (p50/p95/max) and checks that every call was stored exactly once (resending the
first batch must store nothing).

    python bench/collect.py [--events 20000] [--batch 100] [--clients 4] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from custos.core.settings import Settings  # noqa: E402
from custos.service import Custos, keys  # noqa: E402
from custos.store.pgserver import PostgresServer  # noqa: E402

CLI = (sys.executable, "-c", "from custos.cli import main; main()")


def calls(count: int, seed: str) -> list[dict[str, Any]]:
    """Synthetic calls: one identify per 10 users, the rest track events."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        user = f"user-{i % 5000}"
        if i % 10 == 0:
            out.append(
                {
                    "type": "identify",
                    "messageId": f"{seed}-{i}",
                    "userId": user,
                    "anonymousId": f"anon-{i % 5000}",
                    "traits": {"email": f"{user}@example.com", "firstName": "Test"},
                    "timestamp": "2026-05-01T12:00:00Z",
                }
            )
        else:
            out.append(
                {
                    "type": "track",
                    "messageId": f"{seed}-{i}",
                    "userId": user,
                    "event": "Viewed Item",
                    "properties": {"item": i, "price": 9.99},
                    "context": {"consent": {"categoryPreferences": {"Analytics": True}}},
                    "timestamp": "2026-05-01T12:00:00Z",
                }
            )
    return out


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--singles", type=int, default=500, help="single identify calls timed")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="custos-bench-collect-"))
    pg = PostgresServer() if args.backend == "postgresql" else None
    try:
        lines = run(args, pg.new_database() if pg else str(folder / "collect.db"))
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
    if not args.no_record:
        write_section(
            f"collect ({args.backend})",
            "python bench/collect.py " + " ".join(sys.argv[1:]),
            "\n".join(lines),
        )


def _p(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(args: argparse.Namespace, db: str) -> list[str]:
    """Serve ``db``, send the calls, check, print; returns the lines of the report."""
    with Custos.open(db, Settings()) as custos:
        key = keys.create(custos, "bench-web", [], "write")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*CLI, "--db", db, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        seed = uuid.uuid4().hex[:8]
        everything = calls(args.events, seed)
        batches = [everything[i : i + args.batch] for i in range(0, len(everything), args.batch)]
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        bodies = [gzip.compress(orjson.dumps({"batch": b})) for b in batches]
        latencies: list[float] = []
        stored = 0

        def post(body: bytes, client: httpx.Client) -> tuple[float, int]:
            for _ in range(50):
                started = time.perf_counter()
                answer = client.post(f"{base}/v1/batch", content=body, headers=headers)
                if answer.status_code == 429:
                    time.sleep(float(answer.headers.get("Retry-After", "1")))
                    continue
                answer.raise_for_status()
                return time.perf_counter() - started, int(answer.json()["stored"])
            raise RuntimeError("still overloaded after 50 tries")

        clients = [httpx.Client(timeout=120) for _ in range(args.clients)]
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            futures = [
                pool.submit(post, body, clients[i % args.clients]) for i, body in enumerate(bodies)
            ]
            for future in futures:
                seconds, count = future.result()
                latencies.append(seconds)
                stored += count
        elapsed = time.perf_counter() - started
        resent = post(bodies[0], clients[0])[1]
        # Single calls, one at a time, as a web page's library sends them.
        single: list[float] = []
        for i in range(args.singles):
            body = {
                "userId": f"single-{i}",
                "messageId": f"{seed}-single-{i}",
                "traits": {"email": f"single-{i}@example.com"},
            }
            started_one = time.perf_counter()
            answer = clients[0].post(
                f"{base}/v1/identify", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            single.append(time.perf_counter() - started_one)
            answer.raise_for_status()
        for client in clients:
            client.close()
    finally:
        server.terminate()
        server.wait(30)
    with Custos.open(db, Settings()) as custos:
        ids = [rid for source, rid, _ in custos.xref() if source == "bench-web"]
    exactly_once = len(ids) == len(set(ids)) == args.events + args.singles
    lines = [
        f"`custos serve` on {args.backend}, load from {args.clients} client threads in a second "
        "process on loopback; gzip `/v1/batch` bodies of "
        f"{args.batch} calls (one identify per ten calls), then {args.singles} single "
        "`/v1/identify` calls one after another.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| batch throughput | {args.events / elapsed:,.0f} calls/s ({args.events:,} calls, "
        f"{elapsed:.1f} s) |",
        f"| batch request latency p50 / p99 | {statistics.median(latencies) * 1000:.0f} / "
        f"{_p(latencies, 0.99):.0f} ms |",
        f"| single identify latency p50 / p99 | {_p(single, 0.5):.1f} / {_p(single, 0.99):.1f} ms |",
        f"| stored exactly once | {exactly_once} (a resent batch stored {resent}) |",
    ]
    print("\n".join(lines))
    if not exactly_once or resent:
        sys.exit(1)
    return lines


if __name__ == "__main__":
    main()
