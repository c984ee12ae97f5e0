"""The Spark engine: the matcher's pair scoring on Apache Spark, through Splink's Spark backend.

custos reads the store, links exact identifiers and plans profiles itself; only the scoring of
candidate pairs (blocking, comparisons, match weights: the work that grows with the square of a
block) runs where the data is. The driver writes the normalised snapshot as Parquet to the
engine's location (a local or shared path, or any Hadoop-compatible URI), Spark reads it, scores
it with the saved model rendered in Spark SQL (:func:`~custos.identity.matcher.dialect_model`),
and writes the scored pairs back as Parquet; only those come back through the driver.

* **Same results as DuckDB.** Splink's Spark jar computes Jaro-Winkler and Damerau-Levenshtein
  differently from DuckDB (``vargas``/``vrgas``: 0.86 against 0.89), which moves a few weights
  across a level. The engine registers both functions itself as Arrow UDFs over rapidfuzz, whose
  results equal DuckDB's, so the two engines give the same weights and the same profiles (and
  Splink's jar is not needed). Executors need custos's Python dependencies (rapidfuzz, pyarrow).
* **Resumable.** Each run works in a folder named after what it scores (a digest of the
  snapshot, the model and the threshold). Scored pairs that a failed run finished are read back
  instead of scored again; a model trained for the run is kept there too, under a digest of its
  training sample. The folder is removed when the resolution has been written.
* **Lineage** is broken by writing Splink's intermediate tables to Parquet in the run folder
  (Splink's ``parquet`` method, through Spark's checkpoint directory).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from custos.core.errors import ConfigError
from custos.identity import matcher

if TYPE_CHECKING:
    from custos.core.settings import Settings

_log = logging.getLogger(__name__)
#: Spark settings custos starts a session with unless ``spark_conf`` says otherwise: no web UI,
#: and few shuffle partitions (Spark's 200 are for clusters; ``local[N]`` wants a few per core).
DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "4g",
    # errors only (Spark's default logs a line per warning into custos's output)
    "spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile="
    + (Path(__file__).with_name("data") / "spark-log4j2.properties").as_uri(),
}
_lock = threading.Lock()
#: Records per shuffle partition when the configuration sets no count: the default 8 serve up
#: to about 1.6 million records; at 10 million, 8 partitions of ``local[2]``'s 4 GB driver ran
#: out of Spark's execution memory sorting the blocked pairs (each task's share is fixed).
RECORDS_PER_PARTITION = 200_000


def shuffle_partitions(records: int) -> int:
    """Shuffle partitions for scoring ``records`` unless configured: 8 (a few per core of
    ``local[N]``), and one per :data:`RECORDS_PER_PARTITION` records beyond, so that each task's
    part of the blocked pairs fits its share of the executor's memory."""
    return max(int(DEFAULTS["spark.sql.shuffle.partitions"]), -(-records // RECORDS_PER_PARTITION))


def default_location() -> str:
    """Where runs work unless configured: a folder of this user's in the system's temporary
    directory."""
    return str(Path(tempfile.gettempdir()) / f"custos-engine-{os.getuid()}")


def local_folder(location: str) -> Path | None:
    """The folder of a local engine location (a path or ``file://``), or None for a Hadoop URI
    (hdfs://, s3a://), which only Spark can reach."""
    if "://" in location and not location.startswith("file://"):
        return None
    return Path(location.removeprefix("file://"))


def private_location(location: str) -> None:
    """A local work folder holds the snapshot's personal data (names, birth dates, contacts)
    while a run works, and after a failed one until the next is written: it must be this
    user's and closed to everyone else (0700; created so). A Hadoop URI's permissions are its
    file system's to keep."""
    folder = local_folder(location)
    if folder is None:
        return
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(
            "the engine location is open to other users or not yours: it would hold personal "
            "data of the snapshot",
            hint=f"chmod 700 {folder} (as its owner), or set --engine-location to a folder of "
            "your own",
        )


#: The engine location's folders: trained models, and runs (snapshot, scored pairs). A run that
#: is written removes its own; a failed run's stay, to resume from.
MODELS, RUNS = "models", "runs"


def discard_work(location: str | None) -> tuple[int, str | None]:
    """Remove what failed runs left in the engine location (``None``: the default one): the
    snapshot's names, birth dates and contacts, the scored pairs, the trained models. An
    erasure calls it, so that a person erased leaves no copy there; the next run trains and
    scores again instead of resuming. Returns how many folders were removed, and the location
    when it is a Hadoop URI, which only Spark can reach (resolve again, or delete it there).
    A resolution running on Spark at that moment fails, leaving the store as it was."""
    location = location or default_location()
    local = local_folder(location)
    if local is None:
        return 0, location
    removed = 0
    for name in (MODELS, RUNS):
        folder = local / name
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
    return removed, None


def session(master: str, conf: dict[str, str]) -> Any:
    """The process's Spark session for ``master`` (one per process, as Spark wants; a session
    already running is reused, with ``conf`` applied where Spark allows it at run time)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "the Spark engine needs pyspark, which is not installed",
            hint="pip install 'custos[spark]' (Java 17 too), or resolve with --engine duckdb",
        ) from None
    with _lock:
        builder = SparkSession.builder.master(master).appName("custos resolve")
        for key, value in {**DEFAULTS, **conf}.items():
            builder = builder.config(key, value)
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # (PySpark raises its own errors, of several kinds)
            raise _not_started(exc) from exc
        spark.sparkContext.setLogLevel("ERROR")
        if master.startswith("local") and "PYSPARK_PYTHON" not in os.environ:
            # Python workers of this machine: this interpreter, with custos in it (PySpark
            # would start "python3" from the PATH)
            spark.sparkContext.pythonExec = sys.executable
        _register_functions(spark)
    return spark


def _not_started(exc: Exception) -> ConfigError:
    """Why Spark did not start, said as a fix: most often there is no Java."""
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        return ConfigError(
            "Spark could not start: no Java was found (neither JAVA_HOME nor java on the PATH)",
            hint="install Java 17 (Debian: openjdk-17-jre-headless), or resolve with --engine "
            "duckdb",
        )
    return ConfigError(
        f"Spark could not start ({type(exc).__name__}; Spark's own message is above)",
        hint="check --spark-master and --spark-conf (CUSTOS_SPARK_MASTER, CUSTOS_SPARK_CONF)",
    )


def _register_functions(spark: Any) -> None:
    """``jaro_winkler`` and ``damerau_levenshtein`` as Splink's Spark SQL calls them, computed
    as DuckDB computes them (rapidfuzz; on code points, unrestricted transpositions)."""
    from pyspark.sql.functions import arrow_udf

    # (Spark reads the Arrow types of the functions' hints: pyarrow is imported at module level)
    spark.udf.register("jaro_winkler", arrow_udf(jaro_winkler, "double"))
    spark.udf.register("damerau_levenshtein", arrow_udf(damerau_levenshtein, "double"))


def jaro_winkler(left: pa.Array, right: pa.Array) -> pa.Array:
    """Jaro-Winkler similarity of each pair (null where either is), as DuckDB's
    ``jaro_winkler_similarity``. (Module functions: Spark sends them to executors by name.)"""
    from rapidfuzz.distance import JaroWinkler

    return _pairwise(JaroWinkler.similarity, left, right)


def damerau_levenshtein(left: pa.Array, right: pa.Array) -> pa.Array:
    """Damerau-Levenshtein distance of each pair (null where either is), as DuckDB's."""
    from rapidfuzz.distance import DamerauLevenshtein

    return _pairwise(DamerauLevenshtein.distance, left, right)


def _pairwise(function: Any, left: pa.Array, right: pa.Array) -> pa.Array:
    values = [
        None if a is None or b is None else float(function(a, b))
        for a, b in zip(left.to_pylist(), right.to_pylist(), strict=True)
    ]
    return pa.array(values, pa.float64())


def digest(table: pa.Table, *parts: Any) -> str:
    """A short digest of a table's contents (schema and every buffer) and of ``parts``."""
    h = hashlib.blake2b(digest_size=12)
    h.update(table.schema.to_string().encode())
    for column in table.columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None:
                    h.update(memoryview(buffer))
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


class SparkEngine:
    """Scores on Spark (see the module's documentation); also keeps the run's trained model."""

    name = "spark"

    def __init__(self, master: str, conf: dict[str, str], location: str) -> None:
        self.master, self.conf = master, dict(conf)
        self.location = location.rstrip("/")
        #: folders of this run, removed by :meth:`finish`
        self._folders: list[str] = []
        #: phases a failed run had finished and this one read back instead of redoing
        self.resumed: list[str] = []
        self._spark: Any = None
        #: whether this engine started the session (and its JVM), rather than found one
        self._own = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SparkEngine:
        """The engine as configured (``spark_master``, ``spark_conf``, ``engine_location``)."""
        location = settings.engine_location or default_location()
        private_location(location)
        return cls(settings.spark_master, settings.spark_conf, location)

    @property
    def spark(self) -> Any:
        """The Spark session (started on first use: seconds)."""
        if self._spark is None:
            from pyspark import SparkContext

            self._own = SparkContext._active_spark_context is None
            self._spark = session(self.master, self.conf)
        return self._spark

    def release(self) -> None:
        """Stop the Spark session this engine started, and end its JVM: once the pairs are
        scored, the driver clusters and writes them in this process, and the JVM's heap (4 GB
        by default) would only sit beside it (at 10 million records the two outgrew 24 GB). A
        session the engine found running (a notebook's, a test's) is left as it is. A later
        use starts a new one (seconds)."""
        if self._spark is None or not self._own:
            return
        from pyspark import SparkContext

        with _lock:
            self._spark.stop()
            self._spark = None
            gateway = SparkContext._gateway
            SparkContext._gateway = None
            SparkContext._jvm = None
            if gateway is not None:
                gateway.shutdown()
                proc = getattr(gateway, "proc", None)
                if proc is not None:  # (PySpark's JVM ends when its stdin closes)
                    if proc.stdin is not None:
                        proc.stdin.close()
                    try:
                        proc.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()

    def describe(self) -> str:
        """The engine in words, for progress lines."""
        return f"Spark {self.master}"

    # -- files, through Hadoop's file system API (any URI Spark can read) ----------------------
    def _path(self, uri: str) -> tuple[Any, Any]:
        jvm = self.spark._jvm
        path = jvm.org.apache.hadoop.fs.Path(uri)
        return path.getFileSystem(self.spark._jsc.hadoopConfiguration()), path

    def _finished(self, uri: str) -> bool:
        """Whether a Spark write to ``uri`` committed (its ``_SUCCESS`` marker)."""
        fs, path = self._path(f"{uri}/_SUCCESS")
        return bool(fs.exists(path))

    def _remove(self, uri: str) -> None:
        if (folder := local_folder(uri)) is not None:  # (no JVM needed: it may have ended)
            if folder.exists():
                shutil.rmtree(folder)
            return
        fs, path = self._path(uri)
        fs.delete(path, True)

    # -- the run's model ---------------------------------------------------------------------
    def trained(self, sample: pa.Table) -> dict[str, Any] | None:
        """A model a failed run trained on the same sample, or None."""
        uri = self._model_uri(sample)
        if not self._finished(uri):
            return None
        text = self.spark.read.text(uri, wholetext=True).first()[0]
        self.resumed.append("train")
        model: dict[str, Any] = json.loads(text)
        return model

    def keep(self, sample: pa.Table, model: dict[str, Any]) -> None:
        """Keep a model trained for this run until the run is written."""
        uri = self._model_uri(sample)
        frame = self.spark.createDataFrame([(json.dumps(model),)], "value string")
        frame.coalesce(1).write.mode("overwrite").text(uri)

    def _model_uri(self, sample: pa.Table) -> str:
        uri = f"{self.location}/{MODELS}/{digest(sample, matcher.DESIGN_VERSION)}"
        if uri not in self._folders:
            self._folders.append(uri)
        return uri

    # -- scoring -------------------------------------------------------------------------------
    def score(
        self,
        table: pa.Table,
        model: dict[str, Any],
        frequencies: dict[str, dict[str, float]],
        threshold: float,
    ) -> pa.Table:
        """Score ``table``'s pairs on Spark, or read back the pairs a failed run scored."""
        folder = f"{self.location}/{RUNS}/{digest(table, model, frequencies, threshold)}"
        self._folders.append(folder)
        pairs = f"{folder}/pairs"
        if self._finished(pairs):
            self.resumed.append("predict")
        else:
            self._score(table, model, frequencies, threshold, folder)
        return self._read_pairs(pairs)

    def _read_pairs(self, uri: str) -> pa.Table:
        """The scored pairs, read straight from their Parquet files where the location is a
        local folder: collected through Spark, tens of millions of pairs (10 million records)
        overflow the driver's JVM heap (4 GB), which the pairs need not pass through. A Hadoop
        URI is read through Spark: give such a driver the memory (``spark.driver.memory``,
        ``spark.driver.maxResultSize``). The rest of the resolution runs in this process, so
        the engine's own JVM ends here (:meth:`release`): before a local read, after Spark's."""
        if (folder := local_folder(uri)) is not None:
            import pyarrow.dataset as ds

            self.release()
            # (Spark's _SUCCESS marker and .crc files are skipped: names starting "_" or ".")
            return ds.dataset(folder, format="parquet").to_table()
        scored: pa.Table = self.spark.read.parquet(uri).toArrow()
        self.release()
        return scored

    def _score(
        self,
        table: pa.Table,
        model: dict[str, Any],
        frequencies: dict[str, dict[str, float]],
        threshold: float,
        folder: str,
    ) -> None:
        """Write the snapshot and the scored pairs into the run's folder."""
        from splink import Linker, SparkAPI

        spark = self.spark
        if "spark.sql.shuffle.partitions" not in self.conf:
            spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions(table.num_rows)))
        snapshot = f"{folder}/snapshot"
        if not self._finished(snapshot):
            spark.createDataFrame(table).write.mode("overwrite").parquet(snapshot)
        spark.sparkContext.setCheckpointDir(f"{folder}/lineage")
        api = SparkAPI(  # type: ignore[no-untyped-call]
            spark_session=spark, break_lineage_method="parquet", register_udfs_automatically=False
        )
        settings = matcher.dialect_model(model, "spark")
        settings["retain_intermediate_calculation_columns"] = True
        linker = Linker(api.register(spark.read.parquet(snapshot)), settings, log_level=None)
        for column, freq in frequencies.items():
            lookup = spark.createDataFrame(
                list(freq.items()), f"`{column}` string, `tf_{column}` double"
            )
            linker.table_management.register_term_frequency_lookup(api.register(lookup), column)
        predictions = linker.inference.predict(threshold_match_weight=threshold)
        frame = predictions.as_spark_dataframe()
        keep = ["unique_id_l", "unique_id_r", "match_weight"]
        keep += [c for c in frame.columns if c.startswith("mw_")]
        frame.select(*keep).write.mode("overwrite").parquet(f"{folder}/pairs")
        self._remove(f"{folder}/lineage")

    def finish(self) -> None:
        """The resolution is written: remove this run's folders."""
        for uri in self._folders:
            try:
                self._remove(uri)
            except Exception:  # a leftover folder is only disk space; say so, don't fail
                _log.warning("could not remove the engine's work folder %s", uri)
        self._folders.clear()
