"""Benchmark: what an audit entry costs an audited action, and what verifying the log costs.

Every guarded read appends one audit entry in a write transaction of its own. This times
``--entries`` such transactions one after another (the keyed HMAC, the continuity check
against the checkpoint and the checkpoint's atomic rewrite after each commit included), then
``custos audit verify`` over the whole log. Keys and checkpoints go to a temporary folder.

    python bench/audit_append.py [--entries 2000] [--store URL | --postgres]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from custos.service import Custos  # noqa: E402
from custos.store import audit  # noqa: E402
from custos.store.pgserver import PostgresServer  # noqa: E402


def main() -> None:
    """Time the appends and the verification; print µs per entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--store", help="Store URL (default: a new SQLite file)")
    parser.add_argument(
        "--postgres", action="store_true", help="A throw-away PostgreSQL server (pgserver)"
    )
    args = parser.parse_args()
    server = PostgresServer() if args.postgres else None
    if server is not None:
        args.store = server.new_database()
    try:
        run(args)
    finally:
        if server is not None:
            server.stop()


def run(args: argparse.Namespace) -> None:
    """Append, then verify, on the store of ``args``."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CUSTOS_SECRET_KEY_FILE"] = f"{tmp}/secret.key"
        os.environ["CUSTOS_AUDIT_KEY_FILE"] = f"{tmp}/audit.key"
        with Custos.open(args.store or f"{tmp}/bench.db") as app:
            started = time.perf_counter()
            for i in range(args.entries):
                with app.store.write() as conn:
                    audit.append(
                        conn, actor="bench", action="profile.read", purpose="analytics",
                        subjects=[f"cus_{i:016x}"], detail={"fields": ["email"], "refused": 0},
                    )  # fmt: skip
            append = time.perf_counter() - started
            started = time.perf_counter()
            found = app.audit_verify()
            verify = time.perf_counter() - started
    print(f"append: {append / args.entries * 1e6:.0f} µs per audited action ({args.entries})")
    print(f"verify: {verify / args.entries * 1e6:.1f} µs per entry, {verify:.3f} s in all")
    assert found is None, found


if __name__ == "__main__":
    main()
