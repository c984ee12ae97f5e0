"""Benchmark: listing profiles through the REST API (paging and filters) on a large store.

Builds (or reuses) a store of ``--profiles`` distinct synthetic people the way
``bench/api_reads.py`` does, serves it with ``custos serve`` and times ``GET /v1/profiles`` from
a second process on loopback with a key bound to ``customer_service`` (guarded and audited like
every read): a filter that matches no one (the attack of issue 14: it used to read every golden
record), a filter on a common city, the first page and a page deep in the store.

    python bench/listing.py [--profiles 7300] [--repeat 5] [--store PATH] [--note TEXT]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import select

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_reads import CLI, DATA, build  # noqa: E402
from bench.report import write_section  # noqa: E402
from custos.core.settings import Settings  # noqa: E402
from custos.service import Custos, keys  # noqa: E402
from custos.store import golden as golden_store  # noqa: E402
from custos.store import tables as t  # noqa: E402


def _store_facts(app: Custos) -> tuple[int, str, str]:
    """The number of active profiles, the most common city and an id 90 % into the id order."""
    with app.store.read() as conn:
        ids = list(
            conn.execute(
                select(t.profiles.c.id).where(t.profiles.c.status == "active").order_by("id")
            ).scalars()
        )
        cities = Counter(
            golden_store.values(document).get("city", "")
            for _, document in golden_store.documents(conn)
        )
    return len(ids), cities.most_common(1)[0][0], ids[int(len(ids) * 0.9)]


def main() -> None:
    """Build or reuse the store, serve it, time the listings, print and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=7300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", help="this SQLite store (built when missing)")
    parser.add_argument("--note", default="", help="a line added under the table")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    db = Path(args.store) if args.store else DATA / f"api_reads_{args.profiles}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    built = "reused"
    if not db.exists():
        built = f"built in {build(args.profiles, db):.0f} s"
    with Custos.open(str(db), Settings(db=str(db))) as app:
        key = keys.create(app, f"bench-list-{int(time.time())}", ["customer_service"])
        profiles, city, deep = _store_facts(app)
    requests = {
        "`limit=1&where=city:Nope` (matches no one)": {"limit": 1, "where": "city:Nope"},
        f"`limit=50&where=city:{city}` (the most common city)": {
            "limit": 50,
            "where": f"city:{city}",
        },
        "`limit=50` (first page)": {"limit": 50},
        "`limit=50&cursor=…` (90 % into the store)": {"limit": 50, "cursor": deep},
    }
    load = os.getloadavg()[0]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*CLI, "--db", str(db), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    rows: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(timeout=600, headers=headers) as client:
            client.get(f"{base}/v1/profiles", params={"purpose": "customer_service", "limit": 1})
            for label, params in requests.items():
                timings, sizes = [], []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    answer = client.get(
                        f"{base}/v1/profiles", params={"purpose": "customer_service", **params}
                    )
                    timings.append(time.perf_counter() - started)
                    answer.raise_for_status()
                    sizes.append(len(answer.json()["items"]))
                rows.append(
                    f"| {label} | {sizes[-1]} | {statistics.median(timings) * 1000:,.1f} ms "
                    f"| {max(timings) * 1000:,.1f} ms |"
                )
                print(rows[-1], flush=True)
            # a page examines a bounded number of profiles: the whole store, page after page
            params = {"purpose": "customer_service", "limit": 1, "where": "city:Nope"}
            started, pages, found = time.perf_counter(), 0, 0
            while True:
                answer = client.get(f"{base}/v1/profiles", params=params)
                answer.raise_for_status()
                pages += 1
                found += len(answer.json()["items"])
                if not answer.json().get("next_cursor"):
                    break
                params["cursor"] = answer.json()["next_cursor"]
            rows.append(
                f"| `limit=1&where=city:Nope`, following `next_cursor` to the end "
                f"({pages} request{'s' if pages != 1 else ''}) | {found} | {(time.perf_counter() - started) * 1000:,.1f} ms "
                "in all | |"
            )
            print(rows[-1], flush=True)
    finally:
        server.terminate()
        server.wait(30)
    lines = [
        f"`custos serve` on SQLite with {profiles:,} active profiles (store {built}; the people "
        "of `bench/api_reads.py`); each request sent "
        f"{args.repeat} times from a second process on loopback with a key bound to "
        "`customer_service` (each read guarded and audited). Load average (1 min) before: "
        f"{load:.1f}.",
        "",
        "| `GET /v1/profiles?purpose=customer_service&…` | items | median | max |",
        "|---|---:|---:|---:|",
        *rows,
    ]
    if args.note:
        lines += ["", args.note]
    print("\n".join(lines))
    if not args.no_record:
        write_section(
            f"listing ({profiles:,} profiles)",
            f"python bench/listing.py --profiles {args.profiles} --repeat {args.repeat}"
            + (f" --store {args.store}" if args.store else ""),
            "\n".join(lines),
        )


if __name__ == "__main__":
    main()
