"""Probabilistic matching with Splink (Fellegi–Sunter, DuckDB in process).

The input is one Arrow table of normalised person fields (see :data:`MATCH_COLUMNS`), one row
per record (and per interaction that carries a name and a contact). :func:`train` estimates a
model without labels (u by random sampling, m by EM) and returns it as Splink's settings JSON,
so the store can keep and version it; :func:`predict` scores candidate pairs with a saved model
and returns them as edges with match weights and the evidence they rest on.

Fellegi–Sunter adds the weights of the compared fields as if they were independent. Facts about
a *household* are not: people who live together share the street, the postcode and city, the
landline and often the surname and an e-mail, so the model would count one fact four times and
outvote the first name (how twins became one profile). The comparisons are therefore split:

* **person-level**: first name (with term frequencies), date of birth, a personal e-mail, a
  personal phone (compared on its digits, so a number stored without its country meets the same
  number in E.164), the customer number;
* **household-level**: one comparison, ``household``, over the address (street, postcode, city)
  and the *shared* identifiers (an e-mail or phone that records of two or more persons carry:
  :attr:`~custos.identity.graph.ExactResult.shared`), so a household agrees once, however many
  of its facts agree; and the surname, which families share.

One piece of evidence still counts once elsewhere: e-mails agree only as whole addresses (a user
name under another domain is mostly the person's name again); dates of birth know swapped day
and month and one-part typos; a postcode names its city.

What the weights may not decide is left to rules the caller applies to each pair (see
:class:`~custos.identity.graph.Edge` ``evidence``): a link needs person-level evidence and more
than names, and a clear person-level conflict refuses it at any weight
(:func:`~custos.identity.graph.conflict`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from custos.identity.graph import Edge

if TYPE_CHECKING:
    import pyarrow as pa

#: The columns the matcher reads (all strings; null when unknown); see
#: :func:`custos.identity.loading.arrow_table`.
MATCH_COLUMNS = (
    "first_name",
    "first_name_nicknames",  # a list: the names this one is a nickname pair with
    "surname",
    "dob",
    "email",
    "phone",
    "shared_email",
    "shared_phone",
    "street",
    "postcode",
    "city",
    "customer_id",
    "sparse",  # "1" for a row with neither birth date nor city (a call note, an order)
)


def column_type(name: str) -> Any:
    """The Arrow type of a matcher column: lists for ``first_name_nicknames``, else strings."""
    import pyarrow as pa

    return pa.list_(pa.string()) if name == "first_name_nicknames" else pa.string()


#: Version of the comparison design; a saved model of another version is retrained.
DESIGN_VERSION = "7"
#: The compared fields (Splink comparisons), as explain shows them.
COMPARISONS = (
    "first_name",
    "surname",
    "dob",
    "email",
    "phone",
    "household",
    "customer_id",
)
#: Comparisons that say who a person is (a link needs one of them to agree).
PERSON_LEVEL = ("first_name", "dob", "email", "phone", "customer_id")
#: Bits of :attr:`Edge.evidence`: which comparisons agreed (weighed more than nothing).
EVIDENCE_BITS = {name: 1 << i for i, name in enumerate(COMPARISONS)}
PERSON_EVIDENCE = sum(EVIDENCE_BITS[name] for name in PERSON_LEVEL)
#: Evidence beyond the names: a name alone never links.
BEYOND_NAMES = sum(
    bit for name, bit in EVIDENCE_BITS.items() if name not in ("first_name", "surname")
)
_log = logging.getLogger(__name__)


def _settings() -> Any:
    import splink.blocking_rule_library as brl
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    dob = cl.CustomComparison(
        output_column_name="dob",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            cll.CustomLevel(
                "substr(dob_l, 1, 4) = substr(dob_r, 1, 4) "
                "and substr(dob_l, 6, 2) = substr(dob_r, 9, 2) "
                "and substr(dob_l, 9, 2) = substr(dob_r, 6, 2)",
                label_for_charts="day and month swapped",
                base_dialect_str="duckdb",
            ),
            cll.DamerauLevenshteinLevel("dob", 1),
            cll.CustomLevel(
                "substr(dob_l, 6, 5) = substr(dob_r, 6, 5)",
                label_for_charts="same day and month, other year",
                base_dialect_str="duckdb",
            ),
            cll.ElseLevel(),
        ],
    )
    first_name = cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=[
            cll.NullLevel("first_name"),
            cll.ExactMatchLevel("first_name").configure(tf_adjustment_column="first_name"),
            cll.ColumnsReversedLevel("first_name", "surname"),
            # Bob and Robert, Sepp and Josef (the nickname pairs of custos.identity.names)
            cll.CustomLevel(
                "list_contains(first_name_nicknames_l, first_name_r)",
                label_for_charts="nickname",
                base_dialect_str="duckdb",
            ),
            cll.JaroWinklerLevel("first_name", 0.92),
            cll.JaroWinklerLevel("first_name", 0.88),
            cll.CustomLevel(
                "(length(first_name_l) = 1 or length(first_name_r) = 1) "
                "and substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)",
                label_for_charts="initial",
                base_dialect_str="duckdb",
            ),
            cll.JaroWinklerLevel("first_name", 0.7),
            cll.ElseLevel(),
        ],
    )

    def exact(column: str, *near: Any) -> Any:
        """Missing, the same, the ``near`` levels, anything else."""
        levels = [cll.NullLevel(column), cll.ExactMatchLevel(column), *near, cll.ElseLevel()]
        return cl.CustomComparison(output_column_name=column, comparison_levels=levels)

    email = exact("email")
    phone = exact("phone", cll.DamerauLevenshteinLevel("phone", 1))
    # The household counts once: address and shared contacts move together.
    parts = ("street", "postcode", "city", "shared_phone", "shared_email")

    def nothing(side: str) -> str:
        return "(" + " and ".join(f"{p}_{side} is null" for p in parts) + ")"

    def same_street() -> Any:
        return cll.LevenshteinLevel("street", 2)

    def same_place() -> Any:
        return cll.Or(cll.ExactMatchLevel("postcode"), cll.ExactMatchLevel("city"))

    def shared_contact() -> Any:
        return cll.Or(cll.ExactMatchLevel("shared_phone"), cll.ExactMatchLevel("shared_email"))

    household = cl.CustomComparison(
        output_column_name="household",
        comparison_levels=[
            cll.CustomLevel(
                f"{nothing('l')} or {nothing('r')}",
                label_for_charts="nothing to compare",
                base_dialect_str="duckdb",
            ).configure(is_null_level=True),
            # (a shared landline on top of the same address is the same household again)
            cll.And(same_street(), same_place()).configure(label_for_charts="same address"),
            shared_contact().configure(label_for_charts="a shared phone or e-mail"),
            same_street().configure(label_for_charts="same street, other place"),
            cll.ExactMatchLevel("postcode"),
            cll.ExactMatchLevel("city").configure(tf_adjustment_column="city"),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[
            # Not first name and surname alone: at a million records that rule makes 4 of the
            # 7 million candidate pairs (people sharing a common name), half the scoring time,
            # for 0.1% of the recall; the name with the birth year or the city keeps most of it.
            block_on("first_name", "surname", "substr(dob, 1, 4)"),
            block_on("first_name", "surname", "city"),
            # ... and the name alone where one side has neither a birth date nor a city: a call
            # note or an order that carries a name and a contact, nothing else.
            # A call note or an order carries a name and a contact, no birth date or city
            # (``sparse``): its name alone, and with a typo in either part, finds the person's
            # records. (One side's condition per rule, so the database filters before it joins.)
            *(
                brl.CustomRule(f"{join} and {side}.sparse = '1'", sql_dialect="duckdb")
                for join in (
                    "l.first_name = r.first_name and l.surname = r.surname",
                    "l.first_name = r.first_name "
                    "and substr(l.surname, 1, 3) = substr(r.surname, 1, 3)",
                    "l.surname = r.surname "
                    "and substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
                )
                for side in ("l", "r")
            ),
            block_on("surname", "dob"),
            block_on("first_name", "dob"),
            block_on("postcode", "first_name"),
            block_on("email"),
            block_on("phone"),
            block_on("shared_phone"),
            block_on("shared_email"),
            block_on("street"),
            block_on("dob", "postcode"),
            block_on("customer_id"),
        ],
        comparisons=[
            first_name,
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            dob,
            email,
            phone,
            household,
            cl.ExactMatch("customer_id"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=[],
    )


#: Parameters trained on the package's synthetic people (``scripts/train_default_model.py``):
#: the starting point of every training run, and the model of stores too small to train on.
DEFAULT_MODEL = Path(__file__).with_name("default_model.json")
#: Fewer records than this do not make enough pairs to estimate anything: use the defaults.
MIN_TRAINING_RECORDS = 2000
#: DuckDB's memory limit unless configured (``duckdb_memory_limit``).
DUCKDB_MEMORY = "1GB"


def default_model() -> dict[str, Any] | None:
    """The shipped model, or None when the package has none of the current design."""
    if not DEFAULT_MODEL.exists():
        return None
    model: dict[str, Any] = json.loads(DEFAULT_MODEL.read_text())
    return model if model.get("custos_design_version") == DESIGN_VERSION else None


def train(
    table: pa.Table, *, seed: int = 1, sample: int = 150_000, from_defaults: bool = True
) -> dict[str, Any]:
    """Estimate a model on ``table`` without labels; returns Splink's settings as a dict.

    Starts from the shipped defaults; a store with fewer than :data:`MIN_TRAINING_RECORDS`
    records keeps them. Large tables are trained on a random sample of ``sample`` records: m and
    u probabilities are shares (and the prior is a ratio of pairs that shrinks alike), so
    150,000 records estimate them as well as a million do (F1 0.9895 on a million synthetic
    people, against 0.9892 with 250,000), in a fraction of the time.
    A training step that finds too few pairs keeps the previous estimates.
    """
    import numpy as np
    from splink import Linker, block_on
    from splink.internals.exceptions import SplinkException

    base = default_model() if from_defaults else None
    if base is not None and table.num_rows < MIN_TRAINING_RECORDS:
        return base
    if table.num_rows > sample:
        table = table.take(np.asarray(training_rows(table.num_rows, sample, seed)))
    settings = _settings() if base is None else _strip(base)
    db_api = _db_api()
    linker = Linker(db_api.register(table), settings, log_level=None)
    unseen: set[tuple[str, str]] = set()

    def estimate_u() -> None:
        before = _u_values(linker.misc.save_model_to_json())
        linker.training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=seed)
        after = _u_values(linker.misc.save_model_to_json())
        unseen.update(level for level, u in after.items() if before.get(level) == u)

    steps = (
        lambda: linker.training.estimate_probability_two_random_records_match(
            [block_on("first_name", "surname", "dob"), block_on("email")], recall=0.8
        ),
        estimate_u,
        lambda: linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("first_name", "surname"), estimate_without_term_frequencies=True
        ),
        lambda: linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("dob"), estimate_without_term_frequencies=True
        ),
    )
    for step in steps:
        try:
            step()
        except (SplinkException, ValueError, ZeroDivisionError) as exc:
            _log.info("matching model: a training step was skipped (%s)", type(exc).__name__)
    model: dict[str, Any] = linker.misc.save_model_to_json()
    model["custos_design_version"] = DESIGN_VERSION
    _release(db_api)
    pairs = min(U_PAIRS, table.num_rows * (table.num_rows - 1) / 2)
    return calibrate(smooth(bound_unseen(model, unseen, pairs)))


#: Random record pairs that estimate the u probabilities.
U_PAIRS = 2_000_000
#: From this many rows on, :func:`train_apart` trains in a process of its own.
APART_ROWS = 50_000


def train_apart(
    table: pa.Table, *, sample: int = 150_000, apart_from: int = APART_ROWS
) -> dict[str, Any]:
    """:func:`train`, in a fresh Python process when ``table`` has ``apart_from`` rows or more
    (``python -m custos.identity.trainer``, on this process's import path: the table goes to
    it as an Arrow stream on its standard input, the model comes back as JSON on its standard
    output; no copy of the records is written to disk).

    DuckDB keeps Python's lock while it works, so training in this process would take turns
    with the exact linking that a resolution runs beside it on another thread (at a million
    records, 12 s for the two together against 7 s for training alone). A process of its own
    runs both at once. It is started as a command, not by ``multiprocessing``, whose spawned
    child runs the caller's main script again (a script without a ``__main__`` guard would
    ingest twice). Starting it costs about a second, which a smaller table does not win back.
    Where it cannot run (an interpreter that is not Python's, a sandbox), it trains here."""
    if table.num_rows < apart_from:
        return train(table, sample=sample)
    import os
    import subprocess
    import sys

    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    command = [sys.executable, "-m", "custos.identity.trainer", str(sample)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    pipe = subprocess.PIPE
    try:
        # (written in one call, not by run(input=...), whose loop writes 512 bytes at a time and
        # waits for Python's lock between them, which exact linking holds: 14 s against 8)
        with subprocess.Popen(command, stdin=pipe, stdout=pipe, env=env) as child:
            assert child.stdin is not None and child.stdout is not None
            with child.stdin:
                child.stdin.write(sink.getvalue().to_pybytes())
            given_back = child.stdout.read()
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, command)
        model: dict[str, Any] = json.loads(given_back)
        return model
    except (OSError, subprocess.CalledProcessError, ValueError) as exc:
        _log.warning("matching model: trained in this process (%s)", type(exc).__name__)
    return train(table, sample=sample)


def _u_values(model: dict[str, Any]) -> dict[tuple[str, str], float | None]:
    """(comparison, level condition) → u probability, of the levels that random sampling
    estimates (not the null levels, nor ``ELSE``)."""
    return {
        (comparison["output_column_name"], level["sql_condition"]): level.get("u_probability")
        for comparison in model["comparisons"]
        for level in comparison["comparison_levels"]
        if not level.get("is_null_level") and level["sql_condition"] != "ELSE"
    }


def bound_unseen(
    model: dict[str, Any], unseen: set[tuple[str, str]], pairs: float
) -> dict[str, Any]:
    """The u probability of each level that none of the ``pairs`` sampled pairs fell in: one in
    ``pairs`` (as if one had), not the value it started from.

    Splink leaves such a level's u as it was, here the shipped default's, trained on a small
    set. For a level of rare agreement that is luck: on a million synthetic people, two million
    sampled pairs saw a few agree on an address (u about 1.6e-6: the same address weighed 18.6
    bits); on three million they saw none and it kept the default's u of 8e-5 (12.8 bits), so
    the larger store lost links that the smaller kept. Seeing none among ``pairs`` pairs puts u
    near ``1 / pairs`` or below; :func:`smooth` keeps it at 1e-6 at least."""
    if not unseen or pairs < 1:
        return model
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if (comparison["output_column_name"], level["sql_condition"]) in unseen:
                level["u_probability"] = 1.0 / pairs
    return model


#: Of two different persons, one written with an initial, how often the initial is the other's
#: first letter: about one in fifteen (first letters of given names are far from uniform).
INITIAL_CHANCE = 1 / 15


def calibrate(model: dict[str, Any]) -> dict[str, Any]:
    """Levels whose u probability random sampling cannot estimate: an initial agrees with a
    first name by chance about :data:`INITIAL_CHANCE` of the time, given that one of the two
    is an initial. Sampling sees too few initials and would make an agreeing initial worth as
    much as an agreeing name."""
    for comparison in model["comparisons"]:
        if comparison.get("output_column_name") != "first_name":
            continue
        for level in comparison["comparison_levels"]:
            if level.get("label_for_charts") == "initial" and level.get("m_probability"):
                level["u_probability"] = min(1.0, float(level["m_probability"]) * INITIAL_CHANCE)
    return model


def training_rows(total: int, sample: int, seed: int = 1) -> list[int]:
    """The rows (in order) that training draws from a table of ``total`` rows: all of them, or a
    seeded random ``sample``."""
    import numpy as np

    if total <= sample:
        return list(range(total))
    rng = np.random.default_rng(seed)
    chosen: list[int] = np.sort(rng.choice(total, sample, replace=False)).tolist()
    return chosen


def smooth(model: dict[str, Any], floor_m: float = 1e-3, floor_u: float = 1e-6) -> dict[str, Any]:
    """Give every level a small m and u at least, renormalised.

    A level never seen in training otherwise gets m = 0 (one disagreeing field would veto any
    match, whatever else agrees) or no estimate at all.
    """
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for key, floor in (("m_probability", floor_m), ("u_probability", floor_u)):
            values = [max(float(lv.get(key) or 0.0), floor) for lv in levels]
            total = sum(values)
            for level, value in zip(levels, values, strict=True):
                level[key] = value / total
    return model


def _strip(model: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(
        json.dumps({k: v for k, v in model.items() if not k.startswith("custos")})
    )
    return settings


#: Comparisons whose match weights carry term-frequency adjustments.
TF_COLUMNS = ("first_name", "surname", "city")


def _linker(
    table: pa.Table, model: dict[str, Any], *, detail: bool, memory: str = DUCKDB_MEMORY
) -> Any:
    from splink import Linker

    settings = _strip(model)
    settings["retain_intermediate_calculation_columns"] = detail
    db_api = _db_api(memory)
    return Linker(db_api.register(table), settings, log_level=None), db_api


def _db_api(memory: str = DUCKDB_MEMORY) -> Any:
    """An in-process DuckDB for Splink with bounded memory: it spills to disk rather than
    growing past the limit (the rest of a resolution run lives in the same process)."""
    import duckdb
    from splink.internals.duckdb.database_api import DuckDBAPI

    con = duckdb.connect(config={"memory_limit": memory, "threads": 2})
    return DuckDBAPI(connection=con)


def _release(db_api: Any) -> None:
    """Close a one-off DuckDB now: Splink's linker holds reference cycles, so its connection
    (and up to its memory limit of buffers) would otherwise live until the next garbage
    collection, which an entry point may pause for a bulk resolution."""
    db_api.duckdb_con.close()


def term_frequencies(table: pa.Table, model: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Relative frequency of each value of the term-frequency columns in ``table``, smoothed
    towards the model's average frequency (its u probability of an exact match) with the
    weight of :data:`PRIOR_COUNT` of a record: in a store of three records one Jane is a third
    of them, yet no more common a name than in a large one; thirty records of one name are
    common in a store of any size; a million-record store barely notices."""
    import pyarrow.compute as pc

    average = _average_frequencies(model)
    out: dict[str, dict[str, float]] = {}
    for column in TF_COLUMNS:
        counts = pc.value_counts(table.column(column).drop_null())
        values, found = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
        pseudo = PRIOR_COUNT / average.get(column, 1e-3)  # records the prior weighs like
        total = sum(found) + pseudo
        out[column] = {
            str(v): (c + PRIOR_COUNT) / total for v, c in zip(values, found, strict=True)
        }
    return out


#: How many records' worth the model's average frequency weighs in a value's frequency.
PRIOR_COUNT = 0.5


def _average_frequencies(model: dict[str, Any]) -> dict[str, float]:
    """Column → the u probability of the level that adjusts for its term frequencies."""
    out: dict[str, float] = {}
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            column = level.get("tf_adjustment_column")
            if column and level.get("u_probability"):
                out[column] = float(level["u_probability"])
    return out


def _register_frequencies(
    linker: Any, db_api: Any, frequencies: dict[str, dict[str, float]]
) -> None:
    """Make Splink use these term frequencies instead of counting its own."""
    import pyarrow as pa

    for column, freq in frequencies.items():
        lookup = pa.table(
            {
                column: pa.array(list(freq), pa.string()),
                f"tf_{column}": pa.array(list(freq.values()), pa.float64()),
            }
        )
        linker.table_management.register_term_frequency_lookup(db_api.register(lookup), column)


class FieldWeights:
    """The match weight per compared field of scored pairs, column by column (numpy arrays);
    the JSON of one pair is made when asked for (:meth:`detail`): most pairs of a million
    are never kept."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def detail(self, row: int) -> str:
        """The JSON object of row ``row``'s weights, fields that weighed nothing left out
        (shortest round-trip floats, as orjson writes them)."""
        parts = []
        for name, values in self.fields.items():
            v = float(values[row])
            if v != 0:
                parts.append(f'"{name}":{v!r}')
        return "{" + ",".join(parts) + "}"


def _edges(result: pa.Table, comparisons: list[str], threshold: float) -> Iterator[Edge]:
    import numpy as np
    import pyarrow.compute as pc

    result = result.filter(pc.greater_equal(result.column("match_weight"), threshold))
    left = result.column("unique_id_l").to_numpy()
    right = result.column("unique_id_r").to_numpy()
    weight = result.column("match_weight").to_numpy()
    fields: dict[str, Any] = {}
    for name in comparisons:
        mw = pc.fill_null(result.column(f"mw_{name}"), 0.0).to_numpy().astype(float)
        tf_name = f"mw_tf_adj_{name}"
        if tf_name in result.column_names:
            mw = mw + pc.fill_null(result.column(tf_name), 0.0).to_numpy().astype(float)
        fields[name] = np.round(mw, 2)
    scores = FieldWeights(fields)
    # Which comparisons agreed, as bits (EVIDENCE_BITS): the rules on person-level evidence
    # read them without looking at the per-field weights of a million links.
    evidence = np.zeros(len(weight), dtype=np.int64)
    for name, values in fields.items():
        bit = EVIDENCE_BITS.get(name)
        if bit is not None:
            evidence |= np.where(values > 0, bit, 0)
    # Strongest first, ties in the order of the records (DuckDB returns rows in any order, and
    # the order of equal weights decides which of two conflicting links goes first: the same
    # data must give the same profiles every time, on every engine, whose sums of the same
    # field weights may differ in the last bits).
    order = np.lexsort((right, left, -np.round(weight, 9)))
    for row, a, b, w, bits in zip(
        order.tolist(),
        left[order].tolist(),
        right[order].tolist(),
        weight[order].tolist(),
        evidence[order].tolist(),
        strict=True,
    ):
        yield Edge(a, b, "match", w, bits, scores, row)


def _strongest_first(edge: Edge) -> tuple[float, int, int]:
    return (-(edge.weight or 0.0), edge.left, edge.right)


def predict(
    table: pa.Table, model: dict[str, Any], *, threshold: float, engine: Engine | None = None
) -> list[Edge]:
    """Score the candidate pairs within ``table`` on ``engine`` (DuckDB in process unless
    named); edges at or above ``threshold`` (match weight), strongest first, each with the
    match weight per compared field."""
    engine = engine or InProcess()
    scored = engine.score(table, model, term_frequencies(table, model), threshold)
    comparisons = [c["output_column_name"] for c in model["comparisons"]]
    return list(_edges(scored, comparisons, threshold))


class Engine(Protocol):
    """Where the matcher's SQL runs over a snapshot (:func:`predict`): DuckDB in process
    (:class:`InProcess`) or Apache Spark (:class:`custos.identity.spark.SparkEngine`). An
    engine only scores; linking rules, clustering, stable ids and decisions stay in custos,
    the same for every engine."""

    name: str
    #: phases a failed run had finished, read back by this one instead of redone
    resumed: list[str]

    def describe(self) -> str:
        """The engine in words, for progress lines."""
        ...

    def score(
        self,
        table: pa.Table,
        model: dict[str, Any],
        frequencies: dict[str, dict[str, float]],
        threshold: float,
    ) -> pa.Table:
        """The candidate pairs of ``table`` at or above ``threshold``: ``unique_id_l``,
        ``unique_id_r``, ``match_weight`` and each comparison's ``mw_*`` (and ``mw_tf_adj_*``)
        columns, in any order."""
        ...

    def trained(self, sample: pa.Table) -> dict[str, Any] | None:
        """A model that a failed run trained on this sample, or None."""
        ...

    def keep(self, sample: pa.Table, model: dict[str, Any]) -> None:
        """Keep a model trained on ``sample`` until the run's result is written."""
        ...

    def finish(self) -> None:
        """The run's result is written: drop what was kept for resuming it."""
        ...


class InProcess:
    """The default engine: Splink on an in-process DuckDB with bounded memory."""

    name = "duckdb"

    def __init__(self, memory: str = DUCKDB_MEMORY) -> None:
        self.memory = memory  # DuckDB's memory limit while it scores
        self.resumed: list[str] = []  # (an in-process run keeps nothing to resume from)

    def describe(self) -> str:
        """The engine in words."""
        return "DuckDB in process"

    def trained(self, sample: pa.Table) -> dict[str, Any] | None:
        """Nothing is kept in process: None."""
        return None

    def keep(self, sample: pa.Table, model: dict[str, Any]) -> None:
        """Nothing is kept in process."""

    def finish(self) -> None:
        """Nothing to drop."""

    def score(
        self,
        table: pa.Table,
        model: dict[str, Any],
        frequencies: dict[str, dict[str, float]],
        threshold: float,
    ) -> pa.Table:
        """Score with Splink's DuckDB backend (see :class:`Engine`)."""
        linker, db_api = _linker(table, model, detail=True, memory=self.memory)
        try:
            _register_frequencies(linker, db_api, frequencies)
            predictions = linker.inference.predict(threshold_match_weight=threshold)
            scored: pa.Table = predictions.as_pyarrow_table()
            predictions.drop_table_from_database_and_remove_from_cache()
        finally:
            _release(db_api)
        return scored


def dialect_model(model: dict[str, Any], dialect: str) -> dict[str, Any]:
    """A saved model rendered for another SQL dialect (``"spark"``): the comparisons and
    blocking rules as this design defines them, in that dialect, with the model's trained
    parameters (m and u per level, the prior, term-frequency settings). A model's JSON carries
    the SQL of the engine it was trained on, so it is never run on another as it is."""
    if model.get("custos_design_version") not in (None, DESIGN_VERSION):
        raise ValueError("the model is of another comparison design: train a new one first")
    out: dict[str, Any] = _settings().create_settings_dict(dialect)
    for key, value in model.items():
        if key not in ("comparisons", "blocking_rules_to_generate_predictions", "sql_dialect"):
            out[key] = value
    for rendered, saved in zip(out["comparisons"], model["comparisons"], strict=True):
        if rendered["output_column_name"] != saved["output_column_name"]:
            raise ValueError(f"the model's comparison {saved['output_column_name']} is unknown")
        levels = zip(rendered["comparison_levels"], saved["comparison_levels"], strict=True)
        for level, trained in levels:
            level.update({k: v for k, v in trained.items() if k != "sql_condition"})
    return _strip(out)


#: Rows up to this many (an incremental run's new rows and their candidates' profiles) are scored
#: with Splink's real-time comparison (its SQL is built once per model and cached; every pair is
#: tested against the blocking rules), more with ``predict_within`` (blocking inside DuckDB).
REALTIME_MAX = 500


class Scorer:
    """Scores an incremental run's rows with one saved model (incremental attachment).

    Built once per model and kept by whoever keeps the model (a custos instance keeps its
    store's latest, see :class:`custos.identity.models.ModelCache`): it holds the DuckDB
    connections with the model's term frequencies registered and the frequency an unseen value
    gets, because a server attaches records one by one and registering the frequencies costs
    more than scoring a record.
    """

    def __init__(
        self, model: dict[str, Any], frequencies: dict[str, dict[str, float]], key: str
    ) -> None:
        self.model = model
        self.frequencies = frequencies
        #: names the model in Splink's SQL cache (which is Splink's, one per process)
        self.key = f"{key}:{sum(len(f) for f in frequencies.values())}"
        self._comparisons = [c["output_column_name"] for c in model["comparisons"]]
        #: the rarest saved frequency of each column: what an unseen value gets
        self._floors = {
            column: min(freq.values(), default=1e-6) for column, freq in frequencies.items()
        }
        self._linked: tuple[Any, Any] | None = None
        self._realtime: Any = None

    def predict_within(self, table: pa.Table, *, threshold: float) -> list[Edge]:
        """Score the pairs of ``table`` (an incremental run's new rows and the members of the
        profiles they may touch) that a blocking rule of the model generates; edges at or
        above ``threshold``, strongest first."""
        if table.num_rows < 2:
            return []
        if table.num_rows <= REALTIME_MAX:
            edges = self._score_realtime(table, threshold)
        else:
            edges = self._score_blocked(table, threshold)
        edges.sort(key=_strongest_first)
        return edges

    def _score_blocked(self, table: pa.Table, threshold: float) -> list[Edge]:
        """Many rows: Splink's ``predict_within`` (blocking inside DuckDB)."""
        linker, db_api = self._linker()
        registered = db_api.register(table)
        try:
            scored = linker.inference.predict_within(registered, threshold_match_weight=threshold)
            edges = list(_edges(scored.as_pyarrow_table(), self._comparisons, threshold))
            scored.drop_table_from_database_and_remove_from_cache()
        finally:
            registered.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
        return edges

    def _linker(self) -> tuple[Any, Any]:
        import pyarrow as pa

        if self._linked is None:
            empty = pa.table(
                {"unique_id": pa.array([], pa.int64())}
                | {name: pa.array([], column_type(name)) for name in MATCH_COLUMNS}
            )
            linker, db_api = _linker(empty, self.model, detail=True)
            _register_frequencies(linker, db_api, self.frequencies)
            self._linked = (linker, db_api)
        return self._linked

    def _score_realtime(self, table: pa.Table, threshold: float) -> list[Edge]:
        """A few rows: the pairs that a blocking rule of the model would generate, with
        Splink's real-time ``compare_records`` and its SQL cache."""
        from splink.internals.realtime import compare_records

        settings = _strip(self.model)
        rules = [r["blocking_rule"] for r in settings["blocking_rules_to_generate_predictions"]]
        blocked = " or ".join(f"({rule})" for rule in rules)
        if self._realtime is None:
            self._realtime = _db_api()
        rows = self._with_tf(table)
        scored: Any = compare_records(
            rows,
            rows,
            settings,
            self._realtime,
            sql_cache_key=f"custos:{self.key}:within",
            join_condition=f"l.unique_id < r.unique_id and ({blocked})",
        )
        edges = list(_edges(scored.as_pyarrow_table(), self._comparisons, threshold))
        _drop_realtime_tables(self._realtime)
        return edges

    def _with_tf(self, table: pa.Table) -> pa.Table:
        """The table with the saved term frequency of each value (``tf_first_name`` …)."""
        import pyarrow as pa

        out = table
        for column, freq in self.frequencies.items():
            floor = self._floors[column]
            values = [
                None if v is None else freq.get(v, floor) for v in table.column(column).to_pylist()
            ]
            out = out.append_column(f"tf_{column}", pa.array(values, pa.float64()))
        return out


def _drop_realtime_tables(db_api: Any) -> None:
    """Drop the inputs and results compare_records left behind (a server calls it forever)."""
    con = db_api._con
    names = con.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_name like '__splink__compare_records_%' "
        "or table_name like '__splink__realtime_compare_records_%'"
    ).fetchall()
    for name, kind in names:
        con.execute(f'drop {"view" if kind == "VIEW" else "table"} if exists "{name}"')
