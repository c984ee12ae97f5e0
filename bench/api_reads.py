"""Benchmark: profile look-ups through the REST API on a large store.

Builds (or reuses, ``--store``) a store of the synthetic people of
``../shared/benchdata/gen_people.py`` (1,000,000 records by default, resolved into profiles),
serves it with ``custos serve`` and times single look-ups from a second process on loopback, one
after another: ``GET /v1/profiles/{id}`` and ``POST /v1/profiles/lookup`` by e-mail, with a key
bound to ``customer_service`` (guarded and audited like every read).

    python bench/api_reads.py [--people 1000000] [--lookups 500] [--store PATH]
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.identity import _custos_parquet, dataset  # noqa: E402
from bench.report import write_section  # noqa: E402
from custos.core.settings import Settings  # noqa: E402
from custos.service import Custos, keys  # noqa: E402
from custos.store import tables as t  # noqa: E402

CLI = (sys.executable, "-c", "from custos.cli import main; main()")


def build(people: int, db: str) -> None:
    """Ingest and resolve the synthetic people into ``db``."""
    import pyarrow.parquet as pq

    table = pq.read_table(dataset(f"people:{people}"))
    with tempfile.TemporaryDirectory() as tmp:
        source = _custos_parquet(table, Path(tmp) / "people.parquet")
        with Custos.open(db, Settings(db=db, default_region="US")) as app:
            app.ingest(source, "people", actor="bench")
            app.resolve(actor="bench")


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    """Build or reuse the store, serve it, time the look-ups, print and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument("--store", help="reuse this SQLite store (built when missing)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="custos-bench-api-"))
    db = args.store or str(folder / "custos.db")
    if not Path(db).exists():
        build(args.people, db)
    with Custos.open(db, Settings(db=db)) as app:
        name = f"bench-desk-{int(time.time())}"
        key = keys.create(app, name, ["customer_service"])
        with app.store.read() as conn:
            profiles = int(
                conn.execute(
                    select(func.count())
                    .select_from(t.profiles)
                    .where(t.profiles.c.status == "active")
                ).scalar_one()
            )
            pi = t.profile_identifiers
            # E-mails of one profile each (a shared address is answered 400: ambiguous).
            sample = conn.execute(
                select(func.min(pi.c.profile_id), pi.c.value)
                .where(pi.c.kind == "email")
                .group_by(pi.c.value)
                .having(func.count() == 1)
                .limit(50_000)
            ).all()
    rng = random.Random(3)
    picks = rng.sample(sample, min(args.lookups, len(sample)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*CLI, "--db", db, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    by_id: list[float] = []
    by_email: list[float] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(timeout=60) as client:
            for pid, email in picks:
                started = time.perf_counter()
                answer = client.get(
                    f"{base}/v1/profiles/{pid}",
                    params={"purpose": "customer_service"},
                    headers=headers,
                )
                by_id.append(time.perf_counter() - started)
                answer.raise_for_status()
                started = time.perf_counter()
                answer = client.post(
                    f"{base}/v1/profiles/lookup",
                    params={"purpose": "customer_service"},
                    json={"email": email},
                    headers=headers,
                )
                by_email.append(time.perf_counter() - started)
                answer.raise_for_status()
    finally:
        server.terminate()
        server.wait(30)
    lines = [
        f"`custos serve` on SQLite with {profiles:,} active profiles "
        f"({args.people:,} synthetic records); {len(picks)} look-ups of each kind, one after "
        "another from a second process on loopback, with a key bound to `customer_service` "
        "(each read guarded and audited).",
        "",
        "| look-up | p50 | p99 |",
        "|---|---:|---:|",
        f"| `GET /v1/profiles/{{id}}` | {_p(by_id, 0.5):.1f} ms | {_p(by_id, 0.99):.1f} ms |",
        f"| `POST /v1/profiles/lookup` by e-mail | {_p(by_email, 0.5):.1f} ms | "
        f"{_p(by_email, 0.99):.1f} ms |",
    ]
    print("\n".join(lines))
    if not args.no_record:
        write_section(
            "api reads", "python bench/api_reads.py " + " ".join(sys.argv[1:]), "\n".join(lines)
        )


if __name__ == "__main__":
    main()
