"""The default engine on fewer transformer layers: the option, its version, its vectors.

Running only the first K of the model's 12 layers must give other vectors than the full model
(not a silent no-op), the same vectors every time and on every thread count, a version that
names K (so stored scores are recomputed when K changes), and a head trained for that K.
"""

from __future__ import annotations

import numpy as np
import pytest

from custos.insight.sentiment.e5_head import (
    FULL_LAYERS,
    MIN_CHUNK,
    E5HeadEngine,
    Head,
    encoder_layers,
    load_head,
    shared_encoder,
    shipped_layer_counts,
    softmax,
)

TEXTS = [
    "Vielen Dank für die schnelle Hilfe, ich bin sehr zufrieden!",
    "Das ist eine Frechheit, ich warte seit drei Wochen auf mein Geld.",
    "Kunde ruft wegen der Lieferung an, Rückruf vereinbart.",
    "My bag is lost again and nobody at the desk cares.",
    "Thanks so much, the crew was lovely and we landed early!",
]


def _head(layers: int | None) -> Head:
    """A head (random weights) that claims to be trained on ``layers`` layers."""
    rng = np.random.default_rng(7)
    meta: dict[str, object] = {"version": "test", "classes": ["negative", "neutral", "positive"]}
    if layers is not None:
        meta["encoder_layers"] = layers
    w = rng.normal(size=(384, 3)).astype(np.float32)
    return Head([w], [np.zeros(3, dtype=np.float32)], meta)


def test_fewer_layers_give_other_vectors_deterministically() -> None:
    full = shared_encoder("original", FULL_LAYERS).encode(TEXTS)
    six = shared_encoder("original", 6).encode(TEXTS)
    seven = shared_encoder("original", 7).encode(TEXTS)
    assert six.shape == full.shape == (len(TEXTS), 384)
    assert np.array_equal(six, shared_encoder("original", 6).encode(TEXTS[::-1])[::-1])
    assert np.allclose(np.linalg.norm(six, axis=1), 1.0, atol=1e-4)
    # a different representation, not the full model's vectors and not each other's
    assert (np.sum(six * full, axis=1) < 0.9).all()
    assert not np.allclose(six, seven, atol=1e-3)


def test_the_engine_runs_the_layers_its_head_was_trained_on() -> None:
    engine = E5HeadEngine(head=_head(6), num_threads=1)
    assert engine.layers == 6
    expected = shared_encoder("original", 6).encode(TEXTS)
    assert np.array_equal(engine.embed(TEXTS), expected)
    # parallel workers on the cut model: the same vectors as one thread
    texts = [f"{TEXTS[k % len(TEXTS)]} ({k})" for k in range(3 * MIN_CHUNK)]
    parallel = E5HeadEngine(head=_head(6), num_threads=2)
    assert np.array_equal(parallel.embed(texts), engine.embed(texts))
    # a head without a count was trained on all layers
    assert E5HeadEngine(head=_head(None)).layers == FULL_LAYERS


def test_the_version_names_the_layers() -> None:
    six, seven, full = (E5HeadEngine(head=_head(k)) for k in (6, 7, FULL_LAYERS))
    assert six.version.endswith("+layers-6")
    assert seven.version.endswith("+layers-7")
    assert "+layers-" not in full.version  # the full model keeps the version it always had
    assert len({six.version, seven.version, full.version}) == 3


def test_a_head_for_other_layers_is_refused() -> None:
    with pytest.raises(ValueError, match="trained on 6 layers"):
        E5HeadEngine(head=_head(6), layers=7)
    missing = next(k for k in range(1, FULL_LAYERS + 1) if k not in shipped_layer_counts())
    with pytest.raises(ValueError, match=r"train_sentiment\.py --layers"):
        E5HeadEngine(layers=missing)


def test_every_shipped_layer_count_has_its_head_and_version() -> None:
    default = load_head()
    counts = shipped_layer_counts()
    assert counts[0] == encoder_layers(default)
    versions = set()
    for layers in counts:
        engine = E5HeadEngine(layers=layers)
        assert engine.layers == layers == encoder_layers(engine.head)
        assert engine.head.meta["train_size"] > 1_000
        versions.add(engine.version)
    assert len(versions) == len(counts)
    assert E5HeadEngine().version == E5HeadEngine(layers=counts[0]).version
    for layers in counts:
        head = E5HeadEngine(layers=layers).head
        if layers != FULL_LAYERS:  # reproducible, and trained on the same texts
            assert f"--layers {layers}" in head.meta["command"]
            assert head.meta["train_fingerprint"] == default.meta["train_fingerprint"]
            assert head.meta["calibration_fingerprint"] == default.meta["calibration_fingerprint"]


def test_only_the_full_head_is_shipped_and_fewer_layers_need_a_head_of_their_own() -> None:
    # measured (bench/sentiment.py, MODEL_CARD.md): a head on 7 layers lost 1-8 points on
    # English review sentences and up to 3 points negative-vs-positive on German, so no head on
    # fewer layers is shipped; one trained with --layers K still runs on K layers
    assert shipped_layer_counts() == [FULL_LAYERS]
    assert E5HeadEngine().layers == FULL_LAYERS
    with pytest.raises(ValueError, match=r"train_sentiment\.py --layers 7"):
        E5HeadEngine(layers=7)
    engine = E5HeadEngine(head=_head(7), num_threads=1)
    assert engine.layers == 7 and engine.version.endswith("+layers-7")


def test_every_text_runs_on_all_layers_and_is_scored_by_its_languages_head() -> None:
    """No routing of the embedding by language: every text is embedded on all 12 layers; the
    shipped head scores German texts with its German head and the rest with its own layers
    (each with its temperature)."""
    engine = E5HeadEngine(num_threads=1)
    assert engine.layers == FULL_LAYERS and "+de-layers" not in engine.version
    german, english = TEXTS[:3], TEXTS[3:]
    languages = ["de"] * len(german) + ["en"] * len(english)
    found = engine.probabilities(german + english, languages)
    x = engine.embed(german + english)
    head = engine.head
    assert set(head.language_heads) == {"de"}
    de = head.language_heads["de"]
    expected = np.vstack(
        [
            softmax(de.logits(x[: len(german)]) / de.temperature),
            softmax(head.logits(x[len(german) :]) / head.temperature),
        ]
    )
    assert np.allclose(found, expected, atol=1e-9)
    # the German head is a head of its own: the English layers would score the German texts
    # differently
    assert not np.allclose(head.probabilities(x[: len(german)]), found[: len(german)])
