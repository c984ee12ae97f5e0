"""Word n-gram classifiers: the default engine's fast paths for English and German.

Unigrams and bigrams of a lower-cased text (mentions, links and numbers folded into one token
each), weighted like scikit-learn's ``TfidfVectorizer(sublinear_tf=True)`` and fed to a linear
layer. The English model is trained together with the embedding head by
``scripts/train_sentiment.py`` and shipped in the same file; the German one is distilled from
the embedding head by ``bench/sentiment_de/train/train_fast_path.py`` and shipped in
``e5_head_de.npz``. Inference is plain Python and numpy, tens of thousands of texts a second.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

_LINK = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_TOKEN = re.compile(r"[a-z_]+(?:'[a-z]+)?|[!?]|[:;]-?[()dp]")
# German: any letters (umlauts, ß), placeholders such as <PERSON> left by redaction as one token
_TOKEN_DE = re.compile(r"<[a-z_]+>|[^\W\d]+|[!?]")


def ngrams(text: str) -> list[str]:
    """The unigrams and bigrams of ``text`` that the English fast path reads."""
    text = _LINK.sub(" _link_ ", text.lower())
    text = _MENTION.sub(" _user_ ", text)
    text = _NUMBER.sub(" _num_ ", text).replace("’", "'")
    tokens = _TOKEN.findall(text)
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


def german_ngrams(text: str) -> list[str]:
    """The unigrams and bigrams of ``text`` that the German fast path reads."""
    text = _LINK.sub(" _link_ ", text.lower())
    text = _MENTION.sub(" _user_ ", text)
    text = _NUMBER.sub(" _num_ ", text)
    tokens = _TOKEN_DE.findall(text)
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


class NgramModel:
    """tf-idf weighted n-grams and a linear layer to three classes."""

    def __init__(
        self,
        vocabulary: list[str],
        idf: NDArray[np.float32],
        weights: NDArray[np.float32],
        bias: NDArray[np.float32],
        analyzer: Callable[[str], list[str]] = ngrams,
    ) -> None:
        if not len(vocabulary) == len(idf) == weights.shape[0]:
            raise ValueError("vocabulary, idf and weights must have one entry per n-gram")
        self.index = {gram: n for n, gram in enumerate(vocabulary)}
        self.idf = idf.astype(np.float64)
        self.weights = weights.astype(np.float64)
        self.bias = bias.astype(np.float64)
        self.analyzer = analyzer

    def probabilities(self, texts: list[str]) -> NDArray[np.float64]:
        """Class probabilities (negative, neutral, positive), one row per text."""
        logits = np.tile(self.bias, (len(texts), 1))
        for row, text in enumerate(texts):
            counts = Counter(
                n for n in (self.index.get(g) for g in self.analyzer(text)) if n is not None
            )
            if not counts:
                continue
            columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
            values = (
                np.fromiter(
                    (1.0 + math.log(c) for c in counts.values()),
                    dtype=np.float64,
                    count=len(counts),
                )
                * self.idf[columns]
            )
            values /= np.linalg.norm(values)
            logits[row] += values @ self.weights[columns]
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        result: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
        return result
