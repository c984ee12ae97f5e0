"""The Spark engine (``custos resolve --engine spark``): same pairs, weights and profiles as the
in-process DuckDB engine on a realistic multi-silo company, a failed run leaves the store as it
was and the next run reads back what it had finished, and the CLI drives it.

One Spark session (local[2], a real JVM) serves the whole module; Splink's Spark backend and
custos's own Jaro-Winkler/Damerau-Levenshtein functions run for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlalchemy import func, select

from custos.core.errors import ConfigError
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.identity import matcher
from custos.identity.clustering import scoring_threshold
from custos.identity.exact import exact_edges
from custos.identity.loading import arrow_table, join_phone_forms, load
from custos.identity.spark import SparkEngine, private_location, session, shuffle_partitions
from custos.service import Custos
from custos.store import tables as t
from custos.synthetic import MultiSiloManifest, generate_multisilo

pytestmark = pytest.mark.spark
#: ``custos`` as a command, in this interpreter.
CLI = [sys.executable, "-c", "from custos.cli import main; main()"]
#: Small Spark for small data: two shuffle partitions, a modest driver.
CONF = {"spark.sql.shuffle.partitions": "2", "spark.driver.memory": "1g"}


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> MultiSiloManifest:
    return generate_multisilo(tmp_path_factory.mktemp("company"), people=400, seed=23)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, company: MultiSiloManifest) -> Path:
    """A SQLite store with every silo ingested and nothing resolved (copied per test)."""
    path = tmp_path_factory.mktemp("store") / "loaded.db"
    with Custos.open(str(path), Settings(db=str(path)), create=True) as app:
        order = {"records": 0, "interactions": 1, "consents": 2}
        for silo in sorted(company.files, key=lambda f: order[f.kind]):
            app.ingest(silo.path, silo.source, kind=Kind(silo.kind), map_path=silo.map_path)
    return path


def _settings(db: Path, engine: str, location: Path) -> Settings:
    return Settings(
        db=str(db),
        engine=engine,  # type: ignore[arg-type]
        spark_conf=CONF,
        engine_location=str(location),
    )


def _copy(loaded: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / f"{name}.db"
    shutil.copy(loaded, target)
    return target


def _state(app: Custos) -> tuple[list[Any], list[Any], list[Any]]:
    """What a resolution writes: every record's profile, every profile row (its golden
    record), the match models."""
    with app.store.read() as conn:
        profiles = sorted(map(tuple, conn.execute(select(t.profiles)).all()), key=repr)
        models = conn.execute(select(t.match_models.c.version)).scalars().all()
    return sorted(app.xref()), profiles, sorted(models)


@pytest.fixture(scope="module")
def duckdb_state(loaded: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """The profiles the in-process engine makes of the company (the reference)."""
    db = _copy(loaded, tmp_path_factory.mktemp("duck"), "duck")
    with Custos.open(str(db), _settings(db, "duckdb", db.parent / "engine")) as app:
        summary = app.resolve(full=True, actor="test")
        assert summary.engine == "duckdb" and summary.records + summary.interactions > 900
        return sorted(app.xref())


def test_same_functions_as_duckdb() -> None:
    """custos's Spark functions compute Jaro-Winkler and Damerau-Levenshtein as DuckDB does
    (Splink's jar does not: vargas/vrgas is 0.86 there, 0.89 in DuckDB)."""
    spark = session("local[2]", CONF)
    pairs = [
        ("vargas", "vrgas"),
        ("matthai", "maatthai"),
        ("müller", "muller"),
        ("jörg", "jorg"),
        ("ca", "abc"),
        ("ab", "ba"),
        ("émile", "emile"),
        ("", "x"),
        ("alexander", "aleexandra"),
    ]
    frame = spark.createDataFrame(pairs, "a string, b string")
    frame.createOrReplaceTempView("custos_pairs")
    rows = spark.sql(
        "select a, b, jaro_winkler(a, b) as jw, damerau_levenshtein(a, b) as dl from custos_pairs"
    ).collect()
    for row in rows:
        jw, dl = duckdb.execute(
            "select jaro_winkler_similarity($1, $2), damerau_levenshtein($1, $2)", [row.a, row.b]
        ).fetchall()[0]
        assert row.jw == pytest.approx(jw, abs=1e-12), (row.a, row.b)
        assert row.dl == dl, (row.a, row.b)
    nulls = spark.sql("select jaro_winkler(null, 'x') as jw, damerau_levenshtein('x', null) as dl")
    assert nulls.collect()[0].asDict() == {"jw": None, "dl": None}


def test_spark_scores_the_same_pairs_with_the_same_weights(loaded: Path, tmp_path: Path) -> None:
    """The saved model rendered in Spark SQL scores every candidate pair of the snapshot with
    the weights DuckDB gives it, field by field."""
    db = _copy(loaded, tmp_path, "pairs")
    settings = _settings(db, "spark", tmp_path / "engine")
    with Custos.open(str(db), settings) as app, app.store.read() as conn:
        nodes, _, match = load(conn)
    exact = exact_edges(join_phone_forms(nodes), max_persons=3, max_records=200)
    table = arrow_table(match, exact)
    model = matcher.default_model()
    assert model is not None
    threshold = scoring_threshold(settings)
    here = matcher.predict(table, model, threshold=threshold)
    engine = SparkEngine.from_settings(settings)
    there = matcher.predict(table, model, threshold=threshold, engine=engine)
    engine.finish()
    assert len(here) > 500
    # the same pairs in the same order (strongest first; weights summed in another order may
    # differ in the last bits, which must not reorder equal weights)
    assert [(e.left, e.right) for e in here] == [(e.left, e.right) for e in there]
    for edge, other in zip(here, there, strict=True):
        assert edge.weight == pytest.approx(other.weight, abs=1e-9)
        assert (edge.evidence, edge.detail) == (other.evidence, other.detail)
    assert not any((tmp_path / "engine").rglob("*.parquet")), "the run's files are removed"


def test_spark_and_duckdb_make_the_same_profiles(
    loaded: Path, tmp_path: Path, duckdb_state: list[Any]
) -> None:
    db = _copy(loaded, tmp_path, "spark")
    phases: list[str] = []
    with Custos.open(str(db), _settings(db, "spark", tmp_path / "engine")) as app:
        summary = app.resolve(full=True, actor="test", progress=phases.append)
        assert summary.engine == "spark" and summary.resumed == []
        assert sorted(app.xref()) == duckdb_state
    assert phases[0] == "loading records and interactions"
    assert "scoring candidate pairs (Spark local[2])" in phases
    assert phases[-1] == "writing profiles"


def test_a_failed_run_changes_nothing_and_the_next_resumes(
    loaded: Path, tmp_path: Path, duckdb_state: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that fails after Spark scored (here: writing the profiles fails) leaves the store
    exactly as it was; the next run reads back the model and the scored pairs instead of
    training and scoring again, and ends where an uninterrupted run ends."""
    from custos.identity.writer import ProfileWriter

    db = _copy(loaded, tmp_path, "resume")
    location = tmp_path / "engine"
    settings = _settings(db, "spark", location)
    with Custos.open(str(db), settings) as app:
        app.resolve(full=True, actor="test")  # profiles exist: the failure must keep them
        before = _state(app)

        def broken(self: ProfileWriter, *args: Any, **kwargs: Any) -> None:
            raise OSError("disk full")

        with monkeypatch.context() as patch:
            patch.setattr(ProfileWriter, "rewrite", broken)
            with pytest.raises(OSError, match="disk full"):
                app.resolve(retrain=True, actor="test")
        assert _state(app) == before
        assert any(location.rglob("_SUCCESS")), "the finished phases are kept to resume from"

        summary = app.resolve(retrain=True, actor="test")
        assert summary.resumed == ["train", "predict"]
        assert summary.trained
        assert sorted(app.xref()) == duckdb_state
    assert not any(location.rglob("_SUCCESS")), "a written run leaves no work behind"


def test_cli_resolves_on_spark(loaded: Path, tmp_path: Path, duckdb_state: list[Any]) -> None:
    db = _copy(loaded, tmp_path, "cli")
    command = [*CLI, "--db", str(db), "resolve", "--engine", "spark"]
    command += ["--spark-master", "local[2]", "--engine-location", str(tmp_path / "work")]
    for key, value in CONF.items():
        command += ["--spark-conf", f"{key}={value}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "full run" in done.stdout and "scored on spark" in done.stdout
    # standard error is no terminal here: the phases are logged, one line each
    assert "resolve: scoring candidate pairs (Spark local[2])" in done.stderr
    with Custos.open(str(db)) as app:
        assert sorted(app.xref()) == duckdb_state


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--engine", "hadoop"], "--engine 'hadoop': write duckdb or spark"),
        (["--engine", "spark", "--spark-conf", "no-equals"], "--spark-conf 'no-equals'"),
    ],
)
def test_cli_refuses_bad_engine_options(
    loaded: Path, tmp_path: Path, options: list[str], message: str
) -> None:
    db = _copy(loaded, tmp_path, "bad")
    command = [*CLI, "--db", str(db), "resolve", *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert message in done.stderr


def test_cli_says_when_spark_cannot_start(loaded: Path, tmp_path: Path) -> None:
    """No Java on the machine: a clear error with the fix, exit 2, and the store untouched."""
    db = _copy(loaded, tmp_path, "nojava")
    command = [*CLI, "--db", str(db), "resolve", "--engine", "spark"]
    command += ["--engine-location", str(tmp_path / "work")]
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME")}
    env["PATH"] = str(tmp_path / "empty")  # (no java, nothing else either)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "no Java was found" in done.stderr and "openjdk-17-jre-headless" in done.stderr
    with Custos.open(str(db)) as app, app.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.profiles)).scalar_one() == 0


def test_the_work_folder_is_closed_to_other_users(tmp_path: Path) -> None:
    """The snapshot's personal data waits there after a failed run: a local folder is created
    0700, and one that others may read is refused with the fix (no Spark needed)."""
    fresh = tmp_path / "fresh" / "engine"
    private_location(str(fresh))
    assert fresh.stat().st_mode & 0o777 == 0o700
    private_location(f"file://{fresh}")  # the same folder as a URI
    private_location("hdfs://namenode:8020/custos")  # its file system's to keep
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(ConfigError, match="open to other users") as refused:
        SparkEngine.from_settings(_settings(tmp_path / "x.db", "spark", shared))
    assert f"chmod 700 {shared}" in (refused.value.hint or "")


def test_a_model_of_another_design_is_not_rendered() -> None:
    model = matcher.default_model()
    assert model is not None
    with pytest.raises(ValueError, match="another comparison design"):
        matcher.dialect_model({**model, "custos_design_version": "0"}, "spark")
    rendered = matcher.dialect_model(model, "spark")
    assert "ARRAY_CONTAINS" in str(rendered["comparisons"])  # DuckDB's list_contains, in Spark
    levels = [lv for c in rendered["comparisons"] for lv in c["comparison_levels"]]
    saved = [lv for c in model["comparisons"] for lv in c["comparison_levels"]]
    assert [lv.get("m_probability") for lv in levels] == [lv.get("m_probability") for lv in saved]


def test_shuffle_partitions_grow_with_the_records_unless_configured() -> None:
    # 8 partitions of a 4 GB local[2] driver ran out of Spark's memory at 10 million records
    assert shuffle_partitions(1_000) == 8
    assert shuffle_partitions(1_000_000) == 8
    assert shuffle_partitions(3_000_000) == 15
    assert shuffle_partitions(10_000_000) == 50


def test_the_engine_ends_the_jvm_it_started_and_leaves_a_found_session(tmp_path: Path) -> None:
    """Once the pairs are scored the driver clusters them without Spark: a session the engine
    started is stopped and its JVM ended (its heap would sit beside the driver's memory), and a
    later use starts a new one; a session it found running is left as it was."""
    code = (
        "from pyspark import SparkContext\n"
        "from custos.identity.spark import SparkEngine\n"
        f"engine = SparkEngine('local[1]', {CONF!r}, {str(tmp_path)!r})\n"
        "assert engine.spark.range(3).count() == 3\n"
        "jvm = SparkContext._gateway.proc\n"
        "engine.release()\n"
        "assert jvm.poll() is not None, 'the JVM still runs'\n"
        "assert engine.spark.range(4).count() == 4\n"
        "engine.release()\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]

    running = session("local[2]", CONF)
    engine = SparkEngine("local[2]", CONF, str(tmp_path / "found"))
    assert engine.spark is running
    engine.release()
    assert running.range(5).count() == 5
