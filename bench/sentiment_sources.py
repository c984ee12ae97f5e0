"""The labelled sentiment texts custos trains and measures on, by source (licences in
``bench/sentiment_data/SOURCES.md``).

Every source is usable for a model shipped in an Apache-2.0 package: CC BY 4.0 (the UCI
"Sentiment Labelled Sentences", SB-10k German tweets, GoEmotions Reddit comments) or CC0 (texts
the custos developers wrote). Of SB-10k, the German head trains on the training split
(``sb10k-de-train``) and is measured on the validation split (``sb10k-de``). Which sources
each language's head of the shipped model trains on, and which it never sees, is fixed here (``HEAD_SOURCES``, ``EVAL_SOURCES``); the custos
notes and the GoEmotions comments are split by a hash of the text into a training part and a
held-out part (``HELD_OUT_FRACTION``), and the training part again into a part to fit and a
part to calibrate the temperature on (``CALIBRATION_FRACTION``).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[1]
DATA = ROOT / "bench" / "sentiment_data"
GERMAN_SET = ROOT / "bench" / "sentiment_de" / "texts.tsv"
GERMAN_CORPUS = ROOT / "bench" / "sentiment_de" / "train" / "corpus.py"
SB10K = DATA / "sb10k_de_val.tsv"
SB10K_TRAIN = DATA / "sb10k_de_train.tsv"
GOEMOTIONS = DATA / "goemotions_train_head.tsv"
#: GoEmotions' own grouping of its 27 emotions (``goemotions/data/sentiment_dict.json``);
#: "ambiguous" (realization, surprise, curiosity, confusion) is left out
GOEMOTIONS_GROUPS = {
    "positive": [
        "amusement",
        "excitement",
        "joy",
        "love",
        "desire",
        "optimism",
        "caring",
        "pride",
        "admiration",
        "gratitude",
        "relief",
        "approval",
    ],
    "negative": [
        "fear",
        "nervousness",
        "remorse",
        "embarrassment",
        "disappointment",
        "sadness",
        "grief",
        "disgust",
        "anger",
        "annoyance",
        "disapproval",
    ],
}
GOEMOTIONS_EMOTIONS = [
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "disgust",
    "embarrassment",
    "excitement",
    "fear",
    "gratitude",
    "grief",
    "joy",
    "love",
    "nervousness",
    "optimism",
    "pride",
    "realization",
    "relief",
    "remorse",
    "sadness",
    "surprise",
    "neutral",
]
LABELS = ("negative", "neutral", "positive")
UCI_LABELS = {"0": "negative", "1": "positive"}
HELD_OUT_FRACTION = 0.34  # of the custos notes and GoEmotions comments: never trained on
CALIBRATION_FRACTION = 0.2  # of the training texts: the temperature is fitted on these
COMPOSED_SIZE = 1500  # German texts drawn from bench/sentiment_de/train/corpus.py
COMPOSED_SEED = 20261205

#: the sources each language's head of the shipped model trains on (the custos notes and
#: GoEmotions: their training part only); texts of every language in them are used
HEAD_SOURCES = {
    "en": ("uci-imdb", "custos-notes", "goemotions"),
    "de": ("custos-notes", "custos-de-composed", "sb10k-de-train"),
}
#: every source the shipped model trains on
TRAIN_SOURCES = tuple(dict.fromkeys(name for names in HEAD_SOURCES.values() for name in names))
#: sources the shipped head never sees
EVAL_SOURCES = (
    "uci-amazon",
    "uci-yelp",
    "custos-de-service",
    "custos-notes-held-out",
    "sb10k-de",
    "goemotions-held-out",
)


@dataclass(frozen=True)
class Example:
    """One labelled text of a source, in a language."""

    text: str
    label: str
    language: str
    source: str


def normalised(text: str) -> str:
    """Lower case, whitespace collapsed: texts that differ only there are one text."""
    return " ".join(text.lower().split())


def share(text: str, salt: str) -> float:
    """A number in [0, 1) fixed by the normalised text (and a salt): the basis of every split."""
    digest = hashlib.sha256(f"{salt}\0{normalised(text)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def uci(name: str) -> list[Example]:
    """One file of the UCI "Sentiment Labelled Sentences" (``imdb``, ``amazon``, ``yelp``)."""
    path = next(DATA.glob(f"{name}*_labelled.txt"))
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text, _, label = line.rpartition("\t")
        if text.strip():
            rows.append(Example(text.strip(), UCI_LABELS[label.strip()], "en", f"uci-{name}"))
    return rows


def custos_notes() -> list[Example]:
    """The English and German customer-service notes written for custos (CC0)."""
    with (DATA / "custos_notes.tsv").open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [Example(r["text"], r["label"], r["language"], "custos-notes") for r in rows]


def held_out_split(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(texts to train on, texts held out), by a hash of the text; the held-out texts carry
    their source's name with ``-held-out``."""
    train, held = [], []
    for e in examples:
        if share(e.text, "held-out") < HELD_OUT_FRACTION:
            held.append(Example(e.text, e.label, e.language, f"{e.source}-held-out"))
        else:
            train.append(e)
    return train, held


def sb10k_german(path: Path = SB10K, source: str = "sb10k-de") -> list[Example]:
    """German tweets of SB-10k (CC BY 4.0) as the XLM-T benchmark publishes them, labelled by
    their place in the file (see SOURCES.md): the 324 of its validation split, or (``path`` =
    ``SB10K_TRAIN``) the 1,839 of its training split."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [Example(r["text"], r["label"], "de", source) for r in rows]


def german_composed() -> list[Example]:
    """German customer-service texts composed from the fragments of
    ``bench/sentiment_de/train/corpus.py`` (CC0), labelled by the mood of their fragments;
    texts that turn from one mood to the other are left out."""
    spec = importlib.util.spec_from_file_location("custos_de_corpus", GERMAN_CORPUS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [
        Example(text, label, "de", "custos-de-composed")
        for text, _group, label in module.labelled_corpus(COMPOSED_SIZE, COMPOSED_SEED)
        if label in LABELS
    ]


def german_service() -> list[Example]:
    """The German customer-service evaluation set (``bench/sentiment_de/texts.tsv``, CC0)."""
    with GERMAN_SET.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [Example(r["text"], r["label"], "de", "custos-de-service") for r in rows]


def goemotions() -> list[Example]:
    """English Reddit comments of GoEmotions (CC BY 4.0; the first 2,533 lines of its train
    split), three classes by GoEmotions' own grouping of their emotions: only ``neutral`` →
    neutral; every emotion positive → positive; every emotion negative → negative; comments
    with an ambiguous emotion or with both kinds are left out."""
    rows = []
    for line in GOEMOTIONS.read_text(encoding="utf-8").splitlines():
        text, ids, _comment = line.split("\t")
        emotions = {GOEMOTIONS_EMOTIONS[int(n)] for n in ids.split(",")}
        groups = {
            next((g for g, members in GOEMOTIONS_GROUPS.items() if e in members), e)
            for e in emotions
        }
        if len(groups) == 1 and (label := groups.pop()) in LABELS:
            rows.append(Example(text, label, "en", "goemotions"))
    return rows


def all_sources() -> dict[str, list[Example]]:
    """Every source by name, the custos notes as their two parts."""
    train_notes, held_notes = held_out_split(custos_notes())
    train_comments, held_comments = held_out_split(goemotions())
    return {
        "uci-imdb": uci("imdb"),
        "uci-amazon": uci("amazon"),
        "uci-yelp": uci("yelp"),
        "custos-notes": train_notes,
        "custos-notes-held-out": held_notes,
        "custos-de-composed": german_composed(),
        "custos-de-service": german_service(),
        "sb10k-de": sb10k_german(),
        "sb10k-de-train": sb10k_german(SB10K_TRAIN, "sb10k-de-train"),
        "goemotions": train_comments,
        "goemotions-held-out": held_comments,
    }


def training_split(
    sources: dict[str, list[Example]], names: Sequence[str] = TRAIN_SOURCES
) -> tuple[list[Example], list[Example]]:
    """(texts to fit on, texts to calibrate on) from the sources ``names``, by text hash."""
    fit, calibrate = [], []
    for name in names:
        for example in sources[name]:
            if share(example.text, "calibration") < CALIBRATION_FRACTION:
                calibrate.append(example)
            else:
                fit.append(example)
    return fit, calibrate


def fingerprint(examples: Sequence[Example]) -> str:
    """A short hash of a set of texts, to record which texts a split held."""
    digest = hashlib.sha256()
    for text in sorted(normalised(e.text) for e in examples):
        digest.update(text.encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]
