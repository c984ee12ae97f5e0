"""Benchmark: profile look-ups through the REST API on a store of 1,000,000 profiles.

Builds (or reuses) a store of ``--profiles`` distinct synthetic people (``custos.synthetic``:
every e-mail, mobile number and customer number belongs to one person; about a third of them
have a second record from another source sharing the e-mail and customer number), ingests and
resolves it into exactly that many profiles, and caches it under ``bench/data`` (git-ignored) so
reruns start at once. Then serves it with ``custos serve`` and times single look-ups from a
second process on loopback, one after another, with a key bound to ``customer_service``
(guarded and audited like every read): ``GET /v1/profiles/{id}`` and ``POST
/v1/profiles/lookup`` by e-mail, phone and external id (customer number).

    python bench/api_reads.py [--profiles 1000000] [--lookups 500] [--store PATH] [--rebuild]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from custos.core.settings import Settings  # noqa: E402
from custos.service import Custos, keys  # noqa: E402
from custos.store import tables as t  # noqa: E402
from custos.synthetic import PEOPLE_COLUMNS  # noqa: E402
from custos.synthetic.geo import format_phone  # noqa: E402
from custos.synthetic.people import PersonFactory  # noqa: E402

CLI = (sys.executable, "-c", "from custos.cli import main; main()")
DATA = ROOT / "bench" / "data"
COLUMNS = PEOPLE_COLUMNS[:-1]  # the people columns, without the truth (person_id)


def write_people(profiles: int, folder: Path, seed: int = 11) -> tuple[Path, Path]:
    """Two CSV sources (``crm``: one record per person; ``shop``: a second record for about a
    third of them) of ``profiles`` distinct people; no e-mail, phone or customer number is
    shared by two people, so exact linking yields exactly ``profiles`` profiles."""
    rng = random.Random(seed)
    factory = PersonFactory(seed, rng, unique_suffix=True)
    crm, shop = folder / "crm.csv", folder / "shop.csv"
    seen: set[str] = set()
    with crm.open("w", newline="") as a, shop.open("w", newline="") as b:
        first, second = csv.writer(a), csv.writer(b)
        first.writerow(COLUMNS)
        second.writerow(COLUMNS)
        made = index = 0
        while made < profiles:
            p = factory.person(index, handle_rate=0.0)
            index += 1
            phone = format_phone(p.mobile, 0, international=True)
            keys_of = (p.email.lower(), phone, p.customer_no)
            if any(k in seen for k in keys_of):
                continue  # a collision would join two people: take the next person
            seen.update(keys_of)
            made += 1
            a_ = p.address
            row = [
                p.first_name,
                p.last_name,
                p.email,
                phone,
                p.dob.isoformat(),
                a_.line(),
                a_.postcode,
                a_.city,
                p.country,
                p.customer_no,
            ]
            first.writerow([f"c{made}", *row])
            if rng.random() < 0.33:  # the shop knows the e-mail and customer number, no phone
                second.writerow([f"s{made}", *row[:3], "", *row[4:]])
    return crm, shop


def build(profiles: int, db: Path) -> float:
    """Ingest and resolve ``profiles`` synthetic people into ``db``; returns the seconds taken.

    Exact identifiers only (no probabilistic model): the people are distinct by construction,
    and the point is a store of exactly this many profiles, not matching quality (see
    ``bench/identity.py``)."""
    started = time.perf_counter()
    partial = db.with_name(db.name + ".partial")
    for leftover in db.parent.glob(partial.name + "*"):
        leftover.unlink()
    settings = Settings(db=str(partial), default_region="US", probabilistic_matching=False)
    with tempfile.TemporaryDirectory() as tmp:
        crm, shop = write_people(profiles, Path(tmp))
        with Custos.open(str(partial), settings) as app:
            app.ingest(crm, "crm", actor="bench", pii="keep")
            app.ingest(shop, "shop", actor="bench", pii="keep")
            app.resolve(actor="bench")
    partial.rename(db)  # only a finished store is reused
    return time.perf_counter() - started


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    """Build or reuse the store, serve it, time the look-ups, print and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument(
        "--warmup", type=int, default=200, help="look-ups of other profiles first, not timed"
    )
    parser.add_argument("--store", help="this SQLite store (built when missing)")
    parser.add_argument("--rebuild", action="store_true", help="build the store again")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    db = Path(args.store) if args.store else DATA / f"api_reads_{args.profiles}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    built = "reused"
    if args.rebuild and db.exists():
        db.unlink()
    if not db.exists():
        built = f"built in {build(args.profiles, db):.0f} s"
    with Custos.open(str(db), Settings(db=str(db))) as app:
        name = f"bench-desk-{int(time.time())}"
        key = keys.create(app, name, ["customer_service"])
        profiles, sample = _sample(app, args.lookups + args.warmup)
    warmup, picks = sample[: args.warmup], sample[args.warmup :]
    load = os.getloadavg()[0]  # other work on the machine skews the latencies
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*CLI, "--db", str(db), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    timings: dict[str, list[float]] = {k: [] for k in ("id", "email", "phone", "customer_id")}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}"}
        params = {"purpose": "customer_service"}
        with httpx.Client(timeout=60, headers=headers) as client:
            # A server that has been running a while: its connection pools, statement caches
            # and the OS page cache are warm (with other profiles than the timed ones).
            for pick in warmup:
                client.get(f"{base}/v1/profiles/{pick['id']}", params=params).raise_for_status()
            for pick in picks:
                for kind in timings:
                    started = time.perf_counter()
                    if kind == "id":
                        answer = client.get(f"{base}/v1/profiles/{pick['id']}", params=params)
                    else:
                        answer = client.post(
                            f"{base}/v1/profiles/lookup", params=params, json={kind: pick[kind]}
                        )
                    timings[kind].append(time.perf_counter() - started)
                    answer.raise_for_status()
                    if answer.json()["profile_id"] != pick["id"]:
                        raise SystemExit(f"look-up by {kind} found another profile")
    finally:
        server.terminate()
        server.wait(30)
    label = {
        "id": "`GET /v1/profiles/{id}`",
        "email": "`POST /v1/profiles/lookup` by e-mail",
        "phone": "`POST /v1/profiles/lookup` by phone",
        "customer_id": "`POST /v1/profiles/lookup` by external id (customer number)",
    }
    lines = [
        f"`custos serve` on SQLite with {profiles:,} active profiles (distinct synthetic people, "
        f"a third of them with a second record from another source; store {built}); "
        f"{len(picks)} look-ups of each kind of random profiles (after {len(warmup)} untimed "
        "look-ups of others), one after another from a second process on loopback, with a key "
        "bound to `customer_service` (each read guarded and audited); "
        "every answer is checked to be the expected profile. Target: p99 <= 10 ms. Load "
        f"average (1 min) before the look-ups: {load:.1f}.",
        "",
        "| look-up | p50 | p99 |",
        "|---|---:|---:|",
        *(
            f"| {label[k]} | {_p(v, 0.5):.1f} ms | {_p(v, 0.99):.1f} ms |"
            for k, v in timings.items()
        ),
    ]
    print("\n".join(lines))
    if not args.no_record:
        write_section(
            "api reads", "python bench/api_reads.py " + " ".join(sys.argv[1:]), "\n".join(lines)
        )


def _sample(app: Custos, count: int) -> tuple[int, list[dict[str, Any]]]:
    """The number of active profiles, and ``count`` random profiles with their e-mail, phone
    and customer number (each held by that profile only)."""
    pi = t.profile_identifiers
    with app.store.read() as conn:
        profiles = int(
            conn.execute(
                select(func.count()).select_from(t.profiles).where(t.profiles.c.status == "active")
            ).scalar_one()
        )
        chosen = (
            conn.execute(
                select(t.profiles.c.id)
                .where(t.profiles.c.status == "active")
                .order_by(func.random())
                .limit(count)
            )
            .scalars()
            .all()
        )
        picks: list[dict[str, Any]] = []
        for pid in chosen:
            found = {
                kind: value
                for kind, value in conn.execute(
                    select(pi.c.kind, pi.c.value).where(
                        pi.c.profile_id == pid, pi.c.kind.in_(("email", "phone", "customer_id"))
                    )
                )
            }
            if len(found) == 3:
                picks.append({"id": pid, **found})
    return profiles, picks


if __name__ == "__main__":
    main()
