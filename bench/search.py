"""Benchmark: finding people (``custos profile search`` / ``GET /v1/profiles/search``) on a large
store.

Builds (or reuses) a store of ``--profiles`` distinct synthetic people the way
``bench/api_reads.py`` does and times :func:`custos.service.search.search` in process under
``customer_service`` (each search guarded and audited, like the CLI and the API): a full name with
a typo, a surname alone, the beginning of an e-mail, and a phone number, each for ``--searches``
people drawn at random. For contrast, it times one pass over every golden record (what a search
that scored every profile would read at least, before any scoring).

    python bench/search.py [--profiles 100000] [--searches 200] [--store PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_reads import DATA, build  # noqa: E402
from bench.report import write_section  # noqa: E402
from custos.core.settings import Settings  # noqa: E402
from custos.service import Custos, search  # noqa: E402
from custos.store import golden as golden_store  # noqa: E402


def _typo(word: str, rng: random.Random) -> str:
    """The word with one letter after its fourth dropped or doubled (a typo the search forgives)."""
    if len(word) <= 5:
        return word + word[-1]
    i = rng.randrange(4, len(word))
    return word[:i] + word[i + 1 :] if rng.random() < 0.5 else word[:i] + word[i] + word[i:]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    """Build or reuse the store, time the searches, print and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--store", help="this SQLite store (built when missing)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    db = Path(args.store) if args.store else DATA / f"api_reads_{args.profiles}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    built = "reused"
    if not db.exists():
        built = f"built in {build(args.profiles, db):.0f} s"
    rng = random.Random(5)
    with Custos.open(str(db), Settings(db=str(db))) as app:
        clock = time.perf_counter()
        with app.store.read() as conn:
            people = [golden_store.values(document) for _, document in golden_store.documents(conn)]
        scan = time.perf_counter() - clock
        sample = rng.sample(people, args.searches)
        kinds: dict[str, Callable[[dict[str, str]], str]] = {
            "full name with a typo (`Jennifer Wilsn`)": lambda p: (
                f"{p['first_name']} {_typo(p['last_name'], rng)}"
            ),
            "surname alone (`Wilson`)": lambda p: p["last_name"],
            "beginning of an e-mail (`jennifer.wilson@`)": lambda p: p["email"].split("@")[0] + "@",
            "phone number": lambda p: p["phone"],
        }
        load = os.getloadavg()[0]
        rows = []
        for label, query_of in kinds.items():
            times, hits, found = [], 0, 0
            for person in sample:
                query = query_of(person)
                started = time.perf_counter()
                items, _ = search.search(app, query, "customer_service", actor="bench", limit=20)
                times.append(time.perf_counter() - started)
                found += len(items)
                wanted = f"{person['first_name']} {person['last_name']}"
                hits += any(i["name"] == wanted for i in items)
            rows.append(
                f"| {label} | {hits / len(sample):.0%} | {found / len(sample):.1f} | "
                f"{_p(times, 0.5):.1f} ms | {_p(times, 0.99):.1f} ms |"
            )
        clock = time.perf_counter()
        search.sources(app)
        listing = time.perf_counter() - clock
    body = (
        f"`custos.service.search.search` in process on SQLite with {len(people):,} profiles "
        f"(store {built}; the people of `bench/api_reads.py`), purpose `customer_service`, "
        f"{args.searches} people drawn at random per row, `limit=20`; each search guarded and "
        f"audited (one audit entry written per search). Load average (1 min) before: {load:.1f}.\n\n"
        "| search | person found | items | p50 | p99 |\n|---|---:|---:|---:|---:|\n"
        + "\n".join(rows)
        + f"\n\nFor contrast: one pass reading and decoding every golden record took "
        f"{scan * 1000:,.0f} ms (what a search scoring every profile would cost at least). "
        f"`custos sources list` (`GET /v1/sources`: counts per source) took {listing * 1000:,.0f} ms."
    )
    print(body)
    if not args.no_record:
        command = "python bench/search.py" + (
            f" --profiles {args.profiles}" if args.profiles != 100_000 else ""
        )
        write_section(f"search ({len(people):,} profiles)", command, body)


if __name__ == "__main__":
    main()
