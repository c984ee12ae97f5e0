"""A company's own labelled texts: read them, measure an engine on them, fit a head on them.

``custos insight evaluate`` measures the current engine on a labelled file (accuracy, macro-F1,
the confusion matrix, and the accuracy of the most confident 10%..100% of its answers);
``custos insight train`` fits a linear head (multinomial logistic regression, balanced class
weights, a temperature for calibrated probabilities) on the file's texts embedded by
``E5HeadEngine.embed`` and keeps it versioned in the store (``sentiment_heads``), where the
default engine finds it. Cross-validated: every figure is on texts the head did not see.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import Connection, func, select, update

from custos.core.errors import InputError
from custos.insight.sentiment import LABELS, Label, Sentiment, predicted
from custos.insight.sentiment.e5_head import (
    FULL_LAYERS,
    Head,
    fit_temperature,
    head_bytes,
    read_head,
    softmax,
)
from custos.insight.sentiment.language import Language, resolve_language
from custos.store import tables as t

#: Label words accepted in a labelled file (in any case), and the class each means.
WORDS: dict[str, Label] = {
    **{name: name for name in LABELS},
    "neg": "negative",
    "neu": "neutral",
    "pos": "positive",
    "negativ": "negative",  # German; "neutral" is spelled alike
    "positiv": "positive",
}
#: Labels that name none of the three classes (SB-10k's "mixed", a row nobody labelled): their
#: rows are left out of the measure and counted.
NO_CLASS = frozenset(
    {"", "mixed", "both", "gemischt", "unknown", "unbekannt", "irrelevant", "none", "n/a", "na"}
)
#: Numeric labels, by the numbers a column holds: (name, meaning, a number that must occur).
#: Tried in order; the first whose numbers include the column's and its telling number wins.
SCHEMES: tuple[tuple[str, dict[str, Label], str], ...] = (
    ("-1/0/1", {"-1": "negative", "0": "neutral", "1": "positive"}, "-1"),
    ("0/1/2", {"0": "negative", "1": "neutral", "2": "positive"}, "2"),
    ("0/2/4", {"0": "negative", "2": "neutral", "4": "positive"}, "4"),
    (
        "stars 1-5",
        {"1": "negative", "2": "negative", "3": "neutral", "4": "positive", "5": "positive"},
        "5",
    ),
)
#: A column of the numbers 0 and 1 only, and no words: two classes (UCI, SST-2, IMDb files).
BINARY: tuple[str, dict[str, Label]] = ("0/1, two classes", {"0": "negative", "1": "positive"})
LABEL_HINT = (
    "use negative, neutral or positive (or neg/neu/pos, -1/0/1, 0/1/2, stars 1-5), or say "
    "what each label means with --label-map (e.g. '0=negative,1=neutral,2=positive,x=skip')"
)
_NUMBER = re.compile(r"[+-]?\d+(?:\.0*)?")
MIN_TEXTS = 30  # fewest texts to train on
MIN_PER_CLASS = 5  # fewest texts of each class
FOLDS = 5
C_GRID = (1.0, 4.0, 16.0)  # regularisation tried by cross-validation
SHARES = tuple(round(0.1 * n, 1) for n in range(1, 11))
THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8)  # CUSTOS_SENTIMENT_MIN_CONFIDENCE values measured
SEED = 7


@dataclass(frozen=True)
class Labelled:
    """The rows of a labelled file: text, class, stated language (None where not given); how
    each label was read (``reading``: label → class, None for left out), the numeric scheme
    used (``scheme``, None where no number or a ``--label-map`` decided) and the rows left out
    per label (``left_out``)."""

    texts: list[str]
    labels: list[Label]
    stated: list[str | None]
    reading: dict[str, Label | None]
    scheme: str | None
    left_out: dict[str, int]

    def languages(self, default: Language = "unknown") -> list[Language]:
        """The language each text is scored in (the stated one wins over detection)."""
        return [
            resolve_language(text, stated, default)
            for text, stated in zip(self.texts, self.stated, strict=True)
        ]

    def report(self) -> dict[str, Any]:
        """How the labels were read, for a command's output."""
        return {"read_as": self.reading, "scheme": self.scheme, "left_out": self.left_out}


def label_key(value: Any) -> str:
    """A label as read: trimmed, lower case; a whole number in any spelling (``1.0``, ``+1``)
    as its digits."""
    text = "" if value is None else str(value).strip().lower()
    return str(int(float(text))) if _NUMBER.fullmatch(text) else text


def parse_label_map(text: str) -> dict[str, Label | None]:
    """``--label-map``: ``label=class`` pairs separated by commas, a class being negative,
    neutral, positive (or neg/neu/pos) or ``skip`` (rows left out)."""
    mapping: dict[str, Label | None] = {}
    for part in text.split(","):
        label, sep, meaning = part.rpartition("=")
        target = meaning.strip().lower()
        if not sep or (target != "skip" and target not in WORDS):
            raise InputError(
                f"--label-map: {part.strip()!r} is not label=class",
                hint="e.g. --label-map '0=negative,1=neutral,2=positive,x=skip'",
            )
        mapping[label_key(label)] = None if target == "skip" else WORDS[target]
    return mapping


def _reading(
    first_row: dict[str, int], label_map: dict[str, Label | None], column: str, name: str
) -> tuple[dict[str, Label | None], str | None]:
    """What each label of a column means, and the numeric scheme used: ``label_map`` first,
    then the words, then one scheme for all the column's numbers (:data:`SCHEMES`,
    :data:`BINARY`); a label none of them reads is refused with its first row."""
    reading: dict[str, Label | None] = {}
    numbers: set[str] = set()
    for label in first_row:
        if label in label_map:
            reading[label] = label_map[label]
        elif label in WORDS or label in NO_CLASS:
            reading[label] = WORDS.get(label)
        elif _NUMBER.fullmatch(label):
            numbers.add(label)
        else:
            raise InputError(
                f"{name} row {first_row[label]}: label {label!r} in column {column!r} is not a "
                "sentiment class",
                hint=LABEL_HINT,
            )
    if not numbers:
        return reading, None
    # class words beside the numbers (not "mixed" or an empty label): then 0 is neutral
    words = any(reading.get(label) is not None for label in first_row if label not in numbers)
    if numbers == {"0", "1"} and not words:
        scheme, meaning = BINARY
    else:
        chosen = next(
            ((n, m) for n, m, telling in SCHEMES if numbers <= set(m) and telling in numbers),
            (SCHEMES[0][0], SCHEMES[0][1]) if numbers <= set(SCHEMES[0][1]) else None,
        )
        if chosen is None:
            row = min(first_row[n] for n in numbers)
            raise InputError(
                f"{name}: the numeric labels {', '.join(sorted(numbers, key=int))} in column "
                f"{column!r} (first in row {row}) fit no known scheme",
                hint=LABEL_HINT,
            )
        scheme, meaning = chosen
    reading.update({n: meaning[n] for n in numbers})
    return {label: reading[label] for label in first_row}, scheme  # in the file's order


def labelled(
    rows: Sequence[tuple[int, dict[str, Any]]],
    name: str,
    text_column: str,
    label_column: str,
    language_column: str | None = None,
    label_map: dict[str, Label | None] | None = None,
) -> Labelled:
    """The labelled texts of a file's rows ((row number, values), as ``custos ingest`` reads a
    file; ``name`` is the file's, for messages). Labels are read as :func:`_reading` says;
    rows without a text, or whose label names no class, are left out (the latter counted). A
    missing column or a label nothing reads is refused with its row."""
    first_row: dict[str, int] = {}
    kept: list[tuple[str, str, str | None]] = []
    for number, row in rows:
        for column in (text_column, label_column, language_column):
            if column is not None and column not in row:
                raise InputError(
                    f"{name} row {number} has no column {column!r} "
                    f"(columns: {', '.join(sorted(row))})",
                    hint="name the columns with --text-column, --label-column, --language-column",
                )
        text = str(row[text_column] or "").strip()
        if not text:
            continue
        label = label_key(row[label_column])
        first_row.setdefault(label, number)
        stated = str(row[language_column] or "") or None if language_column else None
        kept.append((text, label, stated))
    reading, scheme = _reading(first_row, label_map or {}, label_column, name)
    texts: list[str] = []
    labels: list[Label] = []
    stated_languages: list[str | None] = []
    left_out: Counter[str] = Counter()
    for text, label, stated in kept:
        meaning = reading[label]
        if meaning is None:
            left_out[label] += 1
            continue
        texts.append(text)
        labels.append(meaning)
        stated_languages.append(stated)
    return Labelled(texts, labels, stated_languages, reading, scheme, dict(left_out))


# -- measuring ----------------------------------------------------------------------------------
def measure(labels: Sequence[Label], results: Sequence[Sentiment]) -> dict[str, Any]:
    """Accuracy, macro-F1 and the confusion matrix of the scored texts (the most probable class,
    also where the engine abstains), the share it abstains on, the accuracy of its most
    confident 10%..100%, and the share kept and its accuracy at a few confidence thresholds;
    ``negative_vs_positive``: on the texts labelled negative or positive, how often the sign
    of the score (p(positive) − p(negative)) is theirs, the neutral class set aside. Texts the
    engine does not score (another language) are counted."""
    pairs = [
        (label, predicted(r), r.confidence or 0.0)
        for label, r in zip(labels, results, strict=True)
        if r.label != "unknown"
    ]
    confusion: dict[str, dict[str, int]] = {truth: dict.fromkeys(LABELS, 0) for truth in LABELS}
    for truth, guess, _ in pairs:
        confusion[truth][guess] += 1
    n = len(pairs)
    right = [truth == guess for truth, guess, _ in sorted(pairs, key=lambda p: -p[2])]
    curve = []
    for share in SHARES:
        k = max(1, round(share * n)) if n else 0
        curve.append({"share": share, "texts": k, "accuracy": _ratio(sum(right[:k]), k)})
    thresholds = []
    for threshold in THRESHOLDS:
        kept = [truth == guess for truth, guess, confidence in pairs if confidence >= threshold]
        thresholds.append(
            {
                "min_confidence": threshold,
                "kept": _ratio(len(kept), n),
                "accuracy": _ratio(sum(kept), len(kept)),
            }
        )
    opinion = [
        (truth, r.score)
        for truth, r in zip(labels, results, strict=True)
        if truth != "neutral" and r.score is not None
    ]
    sign_right = sum(score < 0 if truth == "negative" else score > 0 for truth, score in opinion)
    return {
        "texts": len(labels),
        "scored": n,
        "negative_vs_positive": {
            "texts": len(opinion),
            "accuracy": _ratio(sign_right, len(opinion)),
        },
        "unknown": len(labels) - n,
        "uncertain": sum(1 for r in results if r.label == "uncertain"),
        "accuracy": _ratio(sum(right), n),
        "macro_f1": macro_f1(confusion),
        "confusion": confusion,
        "confident": curve,
        "thresholds": thresholds,
    }


def macro_f1(confusion: dict[str, dict[str, int]]) -> float | None:
    """The mean F1 of the three classes (rows: true class, columns: predicted)."""
    scores = []
    for label in LABELS:
        hit = confusion[label][label]
        predicted_as = sum(row[label] for row in confusion.values())
        actual = sum(confusion[label].values())
        if predicted_as + actual == 0:
            continue
        scores.append(2 * hit / (predicted_as + actual))
    return round(sum(scores) / len(scores), 4) if scores else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- training -----------------------------------------------------------------------------------
def check_trainable(labels: Sequence[Label]) -> Counter[str]:
    """The texts per class; refused under 30 texts or with a class of fewer than 5."""
    counts: Counter[str] = Counter(labels)
    if len(labels) < MIN_TEXTS:
        raise InputError(
            f"{len(labels)} labelled text(s) in English or German: too few to train a head on "
            f"(at least {MIN_TEXTS})",
            hint="label more texts (a few hundred give a head that holds); measure the shipped "
            "head with `custos insight evaluate` meanwhile",
        )
    short = [f"{label} {counts[label]}" for label in LABELS if counts[label] < MIN_PER_CLASS]
    if short:
        raise InputError(
            f"too few texts of a class to train on: {', '.join(short)} "
            f"(at least {MIN_PER_CLASS} of each of negative, neutral, positive)",
            hint="label more texts of that class",
        )
    return counts


@dataclass(frozen=True)
class Fitted:
    """A fitted head and its cross-validated answers (one row per training text)."""

    head: Head
    held_out: NDArray[np.float64]  # calibrated probabilities of each text when held out
    c: float
    temperature: float


def fit_head(
    embeddings: NDArray[np.float32], labels: Sequence[Label], embedding: dict[str, Any]
) -> Fitted:
    """A multinomial logistic regression on ``embeddings`` (balanced class weights, its C
    chosen by 5-fold cross-validation) and a temperature fitted on held-out answers (the
    probabilities it gives are calibrated); the head carries it (``meta["temperature"]``).
    ``held_out`` comes from nested cross-validation (C chosen anew inside each training part),
    so the figures measured on it are on texts nothing was fitted or chosen on.
    ``embedding``: the meta of the head whose embedding was used (its model variant, prefix)."""
    # sklearn's libraries are loaded before the thread limit below, which binds loaded ones
    import sklearn.linear_model
    import sklearn.model_selection  # noqa: F401
    from threadpoolctl import threadpool_limits

    y = np.array([LABELS.index(label) for label in labels])
    logits = np.zeros((len(y), len(LABELS)))
    # ~100 small fits: BLAS threads cost far more than they bring (20x on a busy machine)
    with threadpool_limits(1):
        for train, test in _folds(y):
            inner, _ = _choose_c(embeddings[train], y[train])
            model = _model(inner).fit(embeddings[train], y[train])
            logits[test] = model.decision_function(embeddings[test])
        c, _ = _choose_c(embeddings, y)
        final = _model(c).fit(embeddings, y)
    temperature = fit_temperature(logits, y)
    meta = {
        "classes": list(LABELS),
        "encoder_layers": FULL_LAYERS,
        "variant": embedding.get("variant", "original"),
        "prefix": embedding.get("prefix", "query"),
        "C": c,
        "temperature": temperature,  # applied by Head.probabilities, as the shipped head's
    }
    head = Head([final.coef_.T.astype(np.float32)], [final.intercept_.astype(np.float32)], meta)
    return Fitted(head, softmax(logits / temperature), c, temperature)


def _model(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=2000)


def _folds(y: NDArray[np.int64]) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Stratified folds (5, fewer where a class has fewer texts), shuffled with a fixed seed."""
    from sklearn.model_selection import StratifiedKFold

    splits = min(FOLDS, int(np.bincount(y, minlength=len(LABELS)).min()))
    return list(StratifiedKFold(splits, shuffle=True, random_state=SEED).split(y, y))


def _choose_c(x: NDArray[np.float32], y: NDArray[np.int64]) -> tuple[float, float]:
    """The C of :data:`C_GRID` with the best cross-validated accuracy on ``(x, y)``, and it."""
    folds = _folds(y)
    best = (C_GRID[0], -1.0)
    for c in C_GRID:
        right = 0
        for train, test in folds:
            right += int(np.sum(_model(c).fit(x[train], y[train]).predict(x[test]) == y[test]))
        if right / len(y) > best[1]:
            best = (c, right / len(y))
    return best


# -- the store ----------------------------------------------------------------------------------
@cache
def head_from_bytes(blob: bytes) -> Head:
    """The head stored as ``blob`` (parsed once per process)."""
    return read_head(io.BytesIO(blob))


def save(conn: Connection, head: Head, trained_on: dict[str, Any], metrics: dict[str, Any]) -> int:
    """Store a trained head as the next version, active from now on; returns the version."""
    version = (
        int(
            conn.execute(
                select(func.coalesce(func.max(t.sentiment_heads.c.version), 0))
            ).scalar_one()
        )
        + 1
    )
    head.meta["version"] = f"company-{version}"
    conn.execute(update(t.sentiment_heads).values(active=False))
    conn.execute(
        t.sentiment_heads.insert().values(
            version=version,
            created_at=datetime.now(UTC),
            active=True,
            trained_on=orjson.dumps(trained_on).decode(),
            metrics=orjson.dumps(metrics).decode(),
            head=head_bytes(head),
        )
    )
    return version


def active(conn: Connection) -> Head | None:
    """The company's active head (the newest active version), or None: the shipped head."""
    blob = conn.execute(
        select(t.sentiment_heads.c.head)
        .where(t.sentiment_heads.c.active.is_(True))
        .order_by(t.sentiment_heads.c.version.desc())
        .limit(1)
    ).scalar()
    return None if blob is None else head_from_bytes(bytes(blob))


def deactivate(conn: Connection) -> int:
    """Go back to the shipped head; returns how many versions were active."""
    return int(
        conn.execute(
            update(t.sentiment_heads)
            .where(t.sentiment_heads.c.active.is_(True))
            .values(active=False)
        ).rowcount
    )


def history(conn: Connection) -> list[dict[str, Any]]:
    """Every stored head, newest first, without the weights."""
    query = select(*t.sentiment_heads.c["version", "created_at", "active", "trained_on", "metrics"])
    return [
        {
            "version": r.version,
            "created_at": r.created_at.isoformat(),
            "active": bool(r.active),
            "trained_on": orjson.loads(r.trained_on),
            "metrics": orjson.loads(r.metrics),
        }
        for r in conn.execute(query.order_by(t.sentiment_heads.c.version.desc()))
    ]
