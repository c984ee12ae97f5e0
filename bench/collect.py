"""Benchmark: the Segment-compatible collection API, end to end over HTTP.

Starts ``custos serve`` (uvicorn) on a fresh store, creates a write key, and posts ``--events``
track/identify calls in ``/v1/batch`` requests of ``--batch`` calls over ``--connections``
persistent keep-alive connections from this process (a second process on loopback): the bodies
are gzip-compressed and the requests serialised before the clock starts, and a small asyncio
HTTP/1.1 client sends them, so the figures measure the server, not the client. Reports calls/s,
the server's CPU time per call (user + system, from /proc, every server process), request
latency (p50/p99) and checks that every call was stored exactly once (resending the first batch
must store nothing); then times ``--singles`` single ``identify`` calls one after another.

    python bench/collect.py [--events 100000] [--batch 100] [--connections 8] [--workers 1]
                            [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
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
TICKS = os.sysconf("SC_CLK_TCK")


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
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="server processes (uvicorn)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--singles", type=int, default=1000, help="single identify calls timed")
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
        workers = "" if args.workers == 1 else f", {args.workers} workers"
        write_section(
            f"collect ({args.backend}{workers})",
            "python bench/collect.py " + " ".join(sys.argv[1:]),
            "\n".join(lines),
        )


def _p(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and of its live children (uvicorn workers),
    from /proc."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state ppid ... utime (14th field overall) stime (15th)
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def request_bytes(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One serialised HTTP/1.1 keep-alive request."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[str, str], bytes]:
    """Send one request on a kept-alive connection; its status, headers and body."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def blast(
    port: int, requests: list[bytes], connections: int
) -> tuple[float, list[float], int, int]:
    """Send every request over ``connections`` keep-alive connections, each taking the next
    request when its answer is in; returns (seconds, latencies, calls stored, 429s)."""
    pending = list(reversed(requests))
    latencies: list[float] = []
    stored = refused = 0

    async def connection() -> None:
        nonlocal stored, refused
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while pending:
                request = pending.pop()
                while True:
                    started = time.perf_counter()
                    status, headers, body = await _exchange(reader, writer, request)
                    if status == 429:
                        refused += 1
                        await asyncio.sleep(float(headers.get("retry-after", "1")))
                        continue
                    if status != 200:
                        raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
                    latencies.append(time.perf_counter() - started)
                    stored += int(orjson.loads(body)["stored"])
                    break
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return time.perf_counter() - started, latencies, stored, refused


async def singles(port: int, requests: list[bytes]) -> list[float]:
    """Send requests one after another on one keep-alive connection; their latencies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies: list[float] = []
    try:
        for request in requests:
            started = time.perf_counter()
            status, _, body = await _exchange(reader, writer, request)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
    finally:
        writer.close()
    return latencies


def run(args: argparse.Namespace, db: str) -> list[str]:
    """Serve ``db``, send the calls, check, print; returns the lines of the report."""
    load = os.getloadavg()[0]  # other work on the machine skews the wall-clock figures
    with Custos.open(db, Settings()) as custos:
        key = keys.create(custos, "bench-web", [], "write")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*CLI, "--db", db, "serve", "--port", str(port), "--workers", str(args.workers)],
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
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        bodies = [
            request_bytes(
                port,
                "/v1/batch",
                gzip.compress(orjson.dumps({"batch": everything[i : i + args.batch]})),
                headers,
            )
            for i in range(0, len(everything), args.batch)
        ]
        time.sleep(1.0)  # let the workers finish starting
        cpu_before, client_before = cpu_seconds(server.pid), time.process_time()
        elapsed, latencies, stored, refused = asyncio.run(blast(port, bodies, args.connections))
        cpu = cpu_seconds(server.pid) - cpu_before
        client_cpu = time.process_time() - client_before
        resent = asyncio.run(blast(port, bodies[:1], 1))[2]
        # Single calls, one at a time, as a web page's library sends them.
        one_by_one = [
            request_bytes(
                port,
                "/v1/identify",
                orjson.dumps(
                    {
                        "userId": f"single-{i}",
                        "messageId": f"{seed}-single-{i}",
                        "traits": {"email": f"single-{i}@example.com"},
                    }
                ),
                {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            for i in range(args.singles)
        ]
        single = asyncio.run(singles(port, one_by_one))
    finally:
        server.terminate()
        server.wait(30)
    with Custos.open(db, Settings()) as custos:
        ids = [rid for source, rid, _ in custos.xref() if source == "bench-web"]
    exactly_once = len(ids) == len(set(ids)) == args.events + args.singles == stored + args.singles
    lines = [
        f"`custos serve --workers {args.workers}` on {args.backend}; load from "
        f"{args.connections} keep-alive connections of one asyncio client in a second process "
        f"on loopback (requests serialised beforehand); gzip `/v1/batch` bodies of {args.batch} "
        f"calls (one identify per ten calls, each track with a consent context), then "
        f"{args.singles} single `/v1/identify` calls one after another. Server CPU = user + "
        "system time of every server process during the batch phase. Load average (1 min) "
        f"before the run: {load:.1f}.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| batch throughput | {args.events / elapsed:,.0f} calls/s ({args.events:,} calls, "
        f"{elapsed:.1f} s) |",
        f"| server CPU per call | {cpu / args.events * 1e6:.0f} µs ({cpu:.1f} s in all; "
        f"{cpu / elapsed:.2f} cores busy) |",
        f"| load generator CPU per call | {client_cpu / args.events * 1e6:.0f} µs |",
        f"| batch request latency p50 / p99 | {_p(latencies, 0.5):.0f} / "
        f"{_p(latencies, 0.99):.0f} ms ({refused} answered 429 and resent) |",
        f"| single identify latency p50 / p99 | {_p(single, 0.5):.1f} / {_p(single, 0.99):.1f} ms |",
        f"| stored exactly once | {exactly_once} (a resent batch stored {resent}) |",
    ]
    print("\n".join(lines))
    if not exactly_once or resent:
        sys.exit(1)
    return lines


if __name__ == "__main__":
    main()
