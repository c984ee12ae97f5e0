"""Benchmark: collection throughput of a well-behaved client while `custos serve` is attacked.

Starts ``custos serve`` on a fresh store and measures a well-behaved client's collection
throughput (gzip ``/v1/batch`` bodies of ``--batch`` calls over ``--connections`` keep-alive
connections from an asyncio client on 127.0.0.1) for ``--seconds`` undisturbed, then for
``--seconds`` under each attack, made from a third process: ``--slow`` slow senders (each from
its own loopback address, so the per-client cap does not single them out) trickle a collection
body one byte a second; ``--oversized`` senders push 200 MB bodies without a key (half declared
by Content-Length, half chunked), each starting again as soon as it is cut off; then both at
once; then undisturbed again. Reports the throughputs and their ratio to the undisturbed one,
the server's CPU (in all and per stored call) and the attackers', what the attackers were
answered, and the server's peak resident memory (VmHWM). Target: at least 80 % of the
undisturbed throughput, RSS below 500 MB.

    python bench/abuse.py [--seconds 12] [--slow 16] [--oversized 4] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import multiprocessing
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.collect import _exchange, calls, cpu_seconds, request_bytes  # noqa: E402
from bench.report import write_section  # noqa: E402
from custos.core.settings import Settings  # noqa: E402
from custos.service import Custos, keys  # noqa: E402

CLI = (sys.executable, "-c", "from custos.cli import main; main()")
HUGE = 200 * 1024 * 1024
#: Calls per second the requests prepared for a phase suffice for.
POOL_RATE = 60_000


def memory_kb(pid: int, field: str) -> int:
    """A memory figure of process ``pid`` from /proc (VmRSS, VmHWM), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def batches(port: int, key: str, count: int, batch: int, tag: str) -> list[bytes]:
    """``count`` serialised gzip ``/v1/batch`` requests of ``batch`` calls, each call with its
    own messageId (made before the clock starts, so the client costs little CPU)."""
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    return [
        request_bytes(
            port,
            "/v1/batch",
            gzip.compress(orjson.dumps({"batch": calls(batch, f"{tag}{i}")}), 1),
            headers,
        )
        for i in range(count)
    ]


async def collect_for(port: int, requests: list[bytes], seconds: float, connections: int) -> int:
    """A well-behaved client: sends ``requests`` over keep-alive connections for ``seconds``;
    the calls stored (each answer must be 200 and store its whole batch)."""
    pending = list(reversed(requests))
    stored = 0
    deadline = time.monotonic() + seconds

    async def connection() -> None:
        nonlocal stored
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while pending and time.monotonic() < deadline:
                status, _, answer = await _exchange(reader, writer, pending.pop())
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")
                stored += int(orjson.loads(answer)["stored"])
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    if not pending:
        raise RuntimeError("the client ran out of requests: raise POOL_RATE")
    return stored


def _status(sock: socket.socket) -> str:
    """The status the server answered on ``sock`` (or how the connection ended)."""
    try:
        data = sock.recv(64)
    except (ConnectionResetError, TimeoutError):
        return "reset"
    return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "closed"


def _slow(port: int, address: str, stop: Any, tally: Counter[str]) -> None:
    """Trickle a collection body a byte a second, again and again."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), 10, (address, 0)) as sock:
                sock.sendall(
                    b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                )
                sock.settimeout(1.0)
                while not stop.is_set():
                    try:
                        sock.recv(1, socket.MSG_PEEK)  # answered, or closed
                    except TimeoutError:
                        sock.sendall(b" ")
                        continue
                    break
                else:
                    tally["slow still sending at the end"] += 1
                    return
                sock.settimeout(5)
                tally["slow " + _status(sock)] += 1
        except OSError:
            tally["slow refused"] += 1
        stop.wait(1.0)


def _oversized(port: int, address: str, chunked: bool, stop: Any, tally: Counter[str]) -> None:
    """Push a 200 MB keyless body, again and again as soon as it is cut."""
    piece = b"x" * 65536
    if chunked:
        piece = b"%x\r\n" % len(piece) + piece + b"\r\n"
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}"
    while not stop.is_set():
        pushed = 0
        try:
            with socket.create_connection(("127.0.0.1", port), 10, (address, 0)) as sock:
                sock.sendall(f"POST /v1/batch HTTP/1.1\r\nHost: x\r\n{length}\r\n\r\n".encode())
                try:
                    while pushed < HUGE and not stop.is_set():
                        sock.sendall(piece)
                        pushed += len(piece)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                tally["oversized " + _status(sock)] += 1
                tally["oversized MB pushed"] += pushed // (1024 * 1024)
        except OSError:
            tally["oversized refused"] += 1


def attack(port: int, slow: int, oversized: int, stop: Any, out: Any) -> None:
    """The attackers, as threads of this (separate) process, until ``stop``; their tally."""
    tally: Counter[str] = Counter()
    started = time.monotonic()
    threads = [
        threading.Thread(target=_slow, args=(port, f"127.0.1.{i + 1}", stop, tally))
        for i in range(slow)
    ] + [
        threading.Thread(
            target=_oversized, args=(port, f"127.0.2.{i + 1}", i % 2 == 1, stop, tally)
        )
        for i in range(oversized)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = resource.getrusage(resource.RUSAGE_SELF)
    busy = (used.ru_utime + used.ru_stime) / (time.monotonic() - started)
    tally["attackers' cores x1000"] = int(busy * 1000)
    out.put(dict(tally))


def run(args: argparse.Namespace, db: str) -> list[str]:
    """Serve ``db``, measure undisturbed and under attack; the lines of the report."""
    load = os.getloadavg()[0]
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
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

        def phase(tag: str) -> tuple[float, float]:
            """Calls/s of the well-behaved client, and the server's busy cores."""
            pool = int(args.seconds * POOL_RATE / args.batch) + 1
            requests = batches(port, key, pool, args.batch, tag)
            before = cpu_seconds(server.pid)
            stored = asyncio.run(collect_for(port, requests, args.seconds, args.connections))
            return stored / args.seconds, (cpu_seconds(server.pid) - before) / args.seconds

        def attacked(tag: str, slow: int, oversized: int) -> tuple[float, float, dict[str, int]]:
            """A phase under attack: calls/s, busy cores, and what the attackers got."""
            stop = multiprocessing.Event()
            out: Any = multiprocessing.Queue()
            attackers = multiprocessing.Process(
                target=attack, args=(port, slow, oversized, stop, out)
            )
            attackers.start()
            time.sleep(2.0)  # every attacker connected and at work
            rate, cores = phase(tag)
            stop.set()
            tally: dict[str, int] = out.get(timeout=30)
            attackers.join(30)
            return rate, cores, tally

        warm = batches(port, key, 2 * POOL_RATE // args.batch, args.batch, "warm")
        asyncio.run(collect_for(port, warm, 2.0, args.connections))
        rows: list[tuple[str, float, float, dict[str, int]]] = [("none", *phase("calm"), {})]
        rss_calm = memory_kb(server.pid, "VmHWM") / 1024
        for tag, slow, oversized in (
            (f"{args.slow} slow senders", args.slow, 0),
            (f"{args.oversized} oversized-body senders", 0, args.oversized),
            ("both at once", args.slow, args.oversized),
        ):
            rows.append((tag, *attacked(tag.split()[0], slow, oversized)))
        peak = memory_kb(server.pid, "VmHWM") / 1024
        rows.append(("none (again, at the end)", *phase("again"), {}))
    finally:
        server.terminate()
        server.wait(30)
    lines = [
        f"`custos serve` (1 process) on SQLite with the default limits. A well-behaved client "
        f"sends gzip `/v1/batch` bodies of {args.batch} calls over {args.connections} keep-alive "
        f"connections from 127.0.0.1 as fast as it is answered, for {args.seconds:g} s "
        f"undisturbed, for {args.seconds:g} s under each attack (made by a third process), and "
        f"undisturbed again at the end (its mean with the first is the undisturbed figure the "
        f"others are compared with). The attacks: "
        f"slow senders (one loopback address each) trickle a keyless `/v1/track` body a "
        f"byte a second; oversized-body senders push 200 MB keyless `/v1/batch` bodies (half with "
        f"Content-Length, half chunked), starting again as soon as they are cut. Target: >= 80 % "
        f"of the undisturbed throughput, RSS < 500 MB. Server CPU = user + system time of the "
        f"server process (one event loop: at most about one core); server CPU per call is what "
        f"an attack adds to each stored call. Everything runs on this machine, so other work on "
        f"it, the attackers' own CPU and the kernel's copying of what they push compete with "
        f"the server and the client for its {os.cpu_count()} cores. Load average (1 min) before "
        f"the run: {load:.1f}.",
        "",
        "| attack | well-behaved client | of undisturbed | server CPU | server CPU per call | "
        "attackers' CPU | attackers' answers |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    calm = (rows[0][1] + rows[-1][1]) / 2  # undisturbed: the mean of the first and last phase
    for tag, rate, cores, tally in rows:
        spent = tally.pop("attackers' cores x1000", 0) / 1000
        answered = ", ".join(f"{k}: {v:,}" for k, v in sorted(tally.items())) or "-"
        lines.append(
            f"| {tag} | {rate:,.0f} calls/s | {rate / calm:.0%} | {cores:.2f} cores | "
            f"{cores / rate * 1e6:.0f} µs | {spent:.2f} cores | {answered} |"
        )
    lines += [
        "",
        f"Server peak RSS (VmHWM): {rss_calm:.0f} MB after the undisturbed phase, {peak:.0f} MB "
        "after all the attacks.",
    ]
    print("\n".join(lines))
    return lines


def main() -> None:
    """Run the benchmark, print its table and record it in BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each phase")
    parser.add_argument("--slow", type=int, default=16, help="slow senders")
    parser.add_argument("--oversized", type=int, default=4, help="oversized-body senders")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="custos-bench-abuse-"))
    try:
        lines = run(args, str(folder / "abuse.db"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not args.no_record:
        write_section("abuse", "python bench/abuse.py " + " ".join(sys.argv[1:]), "\n".join(lines))


if __name__ == "__main__":
    main()
