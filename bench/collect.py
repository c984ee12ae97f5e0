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
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="custos-bench-collect-"))
    pg = PostgresServer() if args.backend == "postgresql" else None
    try:
        run(args, pg.new_database() if pg else str(folder / "collect.db"))
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace, db: str) -> None:
    """Serve ``db``, send the calls, check and print."""
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
        for client in clients:
            client.close()
    finally:
        server.terminate()
        server.wait(30)
    with Custos.open(db, Settings()) as custos:
        ids = [rid for source, rid, _ in custos.xref() if source == "bench-web"]
    exactly_once = len(ids) == len(set(ids)) == args.events
    latencies.sort()
    print(f"store: {args.backend}; {args.clients} clients")
    print(
        f"{args.events} calls in {len(bodies)} gzip batches of {args.batch}: {elapsed:.1f} s, "
        f"{args.events / elapsed:,.0f} calls/s"
    )
    print(
        f"request latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms"
    )
    print(f"stored {stored}, exactly once: {exactly_once}, a resent batch stored {resent}")
    if not exactly_once or resent:
        sys.exit(1)


if __name__ == "__main__":
    main()
