"""Convert dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

The converter reads dlib's own serialization format with a small parser written here (dlib is
not called), turns the network into a list of layers (:class:`ResNetSpec`) and builds an
equivalent ONNX graph from it. :func:`converted_model` caches the result on disk, keyed by the
sha256 of the ``.dat`` file.

dlib's format, as far as this network needs it:

* integers: one control byte (low nibble: number of payload bytes, ``0x80``: negative), then
  the magnitude as little-endian bytes;
* floating-point scalars: an integer mantissa and an integer exponent, value
  ``mantissa * 2**exponent`` (exponent 32000 / 32001 mark infinity / NaN);
* strings: an integer length, then the bytes; booleans: the character ``'0'`` or ``'1'``;
* tensors: version 2, four integer dimensions (num_samples, k, nr, nc), then raw
  little-endian float32 values; alias tensors (views into a layer's parameter tensor):
  version 1 and the four dimensions;
* a network: the loss layer, one version integer per layer from the outermost layer inwards
  (2 for a computational layer, 3 for the one on top of the input layer, 1 for tag and skip
  layers, which carry nothing else), the input layer, then each computational layer's details
  from the innermost outwards, each followed by three booleans and three bookkeeping tensors.

Tag and skip layers are both written as a bare version 1, so their identities are recovered
from the structure: a single marker is ``tag1``; two adjacent markers are ``tag2`` followed by
``skip1`` (dlib's ``residual_down`` block), and the ``add_prev`` closing such a block adds
``tag2``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from facekey.errors import ModelIntegrityError, ModelNotFound

__all__ = [
    "AddPrev",
    "Affine",
    "AvgPool",
    "Conv",
    "FullyConnected",
    "InputSpec",
    "Layer",
    "MaxPool",
    "Relu",
    "ResNetSpec",
    "Skip",
    "Tag",
    "build_onnx",
    "converted_model",
    "parse_resnet",
]

logger = logging.getLogger(__name__)

Array = NDArray[np.float32]

#: ONNX opset of the generated graph (onnxruntime supports it on every platform we ship).
OPSET = 17
#: Name of the graph input: uint8 RGB face chips, shape [N, 150, 150, 3].
INPUT_NAME = "chips"
#: Name of the graph output: raw dlib descriptors, float32 [N, 128].
OUTPUT_NAME = "embeddings"
#: Prefix of cached ONNX files; the sha256 of the source follows it.
CACHE_PREFIX = "dlib_resnet_v1-"

_FLOAT_INF = 32000
_FLOAT_NAN = 32001
_MAX_STRING = 1 << 16


# ---------------------------------------------------------------------------------------------
# The network description


@dataclass(frozen=True)
class InputSpec:
    """dlib's ``input_rgb_image_sized``: per-channel means (R, G, B) and the chip size."""

    means: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True, eq=False)
class Conv:
    """``con_``: weights [out, in, rows, cols], bias [out], (y, x) stride and padding."""

    weights: Array
    bias: Array
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, eq=False)
class Affine:
    """``affine_`` in convolution mode: ``gamma[c] * x + beta[c]`` (batch norm, folded)."""

    gamma: Array
    beta: Array


@dataclass(frozen=True)
class Relu:
    """``relu_``."""


@dataclass(frozen=True)
class MaxPool:
    """``max_pool``: (y, x) window, stride and padding."""

    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AvgPool:
    """``avg_pool``: (y, x) window, stride and padding; a (0, 0) window averages everything."""

    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, eq=False)
class FullyConnected:
    """``fc_``: weights [inputs, outputs] (``y = x @ weights``) and an optional bias."""

    weights: Array
    bias: Array | None


@dataclass(frozen=True)
class Tag:
    """``tagN``: remembers the current tensor under ``ident``."""

    ident: int


@dataclass(frozen=True)
class Skip:
    """``skipN``: continues from the tensor remembered under ``ident``."""

    ident: int


@dataclass(frozen=True)
class AddPrev:
    """``add_prevN``: adds the tensor remembered under ``ident``, zero-padding the smaller one."""

    ident: int


Layer = Conv | Affine | Relu | MaxPool | AvgPool | FullyConnected | Tag | Skip | AddPrev


@dataclass(frozen=True)
class ResNetSpec:
    """A parsed dlib metric-learning network; ``layers`` are in execution order (input first)."""

    input: InputSpec
    layers: tuple[Layer, ...]
    margin: float
    distance_threshold: float

    @property
    def embedding_size(self) -> int:
        """Length of the descriptor: the output width of the last fully connected layer."""
        for layer in reversed(self.layers):
            if isinstance(layer, FullyConnected):
                return int(layer.weights.shape[1])
        raise ModelIntegrityError("dlib network has no fully connected layer")


# ---------------------------------------------------------------------------------------------
# dlib's serialization primitives


@dataclass(frozen=True)
class _Alias:
    """An alias tensor: the shape of a view into a parameter tensor."""

    shape: tuple[int, int, int, int]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class _Reader:
    """A cursor over dlib-serialized bytes; every malformed read raises ModelIntegrityError."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.pos = 0

    def fail(self, what: str) -> ModelIntegrityError:
        """An error naming what was being read and where."""
        return ModelIntegrityError(f"dlib model file is malformed at byte {self.pos}: {what}")

    def take(self, count: int, what: str) -> memoryview:
        """The next ``count`` bytes."""
        if count < 0 or self.pos + count > len(self._data):
            raise self.fail(f"truncated while reading {what}")
        chunk = self._data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def integer(self, what: str = "an integer") -> int:
        """A variable-length integer."""
        control = self.take(1, what)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise self.fail(f"bad integer control byte 0x{control:02x} in {what}")
        value = int.from_bytes(self.take(size, what), "little")
        return -value if control & 0x80 else value

    def count(self, what: str) -> int:
        """A non-negative integer (a size or a dimension)."""
        value = self.integer(what)
        if value < 0:
            raise self.fail(f"negative {what}: {value}")
        return value

    def real(self, what: str = "a float") -> float:
        """A floating-point scalar (mantissa, exponent)."""
        mantissa = self.integer(what)
        exponent = self.integer(what)
        if exponent == _FLOAT_INF:
            return -math.inf if mantissa < 0 else math.inf
        if exponent == _FLOAT_NAN:
            return math.nan
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError as error:
            raise self.fail(f"{what} out of range") from error

    def boolean(self, what: str = "a flag") -> bool:
        """A boolean written as the character '0' or '1'."""
        char = self.take(1, what)[0]
        if char not in (0x30, 0x31):
            raise self.fail(f"bad boolean 0x{char:02x} in {what}")
        return char == 0x31

    def string(self, what: str = "a string") -> str:
        """A length-prefixed string."""
        length = self.count(what)
        if length > _MAX_STRING:
            raise self.fail(f"implausible string length {length} in {what}")
        try:
            return bytes(self.take(length, what)).decode("ascii")
        except UnicodeDecodeError as error:
            raise self.fail(f"non-ASCII {what}") from error

    def shape(self, what: str) -> tuple[int, int, int, int]:
        """Four tensor dimensions."""
        n, k, rows, cols = (self.count(f"dimension of {what}") for _ in range(4))
        return n, k, rows, cols

    def tensor(self, what: str = "a tensor") -> Array:
        """A dense float32 tensor (version 2)."""
        self.expect_version(2, what)
        shape = self.shape(what)
        raw = self.take(4 * math.prod(shape), what)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> _Alias:
        """An alias tensor (version 1): only its shape."""
        self.expect_version(1, what)
        return _Alias(self.shape(what))

    def expect_version(self, expected: int, what: str) -> None:
        """Read a version integer and check it."""
        version = self.integer(f"version of {what}")
        if version != expected:
            raise self.fail(f"{what} has version {version}, expected {expected}")

    def expect_end(self) -> None:
        """Check that every byte was consumed."""
        if self.pos != len(self._data):
            raise self.fail(f"{len(self._data) - self.pos} unexpected trailing bytes")


# ---------------------------------------------------------------------------------------------
# Layer details


def _pairs(reader: _Reader, what: str) -> tuple[tuple[int, int], ...]:
    """(y, x) window/filter size, stride and padding, as dlib writes them."""
    values = [reader.count(what) for _ in range(6)]
    return (values[0], values[1]), (values[2], values[3]), (values[4], values[5])


def _learning_rates(reader: _Reader, what: str) -> None:
    """Skip a layer's four learning-rate / weight-decay multipliers."""
    for _ in range(4):
        reader.real(f"multiplier of {what}")


def _slice(reader: _Reader, params: Array, offset: int, view: _Alias, what: str) -> Array:
    """The part of a flat parameter tensor that an alias tensor describes."""
    flat = params.reshape(-1)
    if offset + view.size > flat.size:
        raise reader.fail(f"{what} does not fit in the layer's parameters")
    return np.ascontiguousarray(flat[offset : offset + view.size].reshape(view.shape))


def _read_con(reader: _Reader) -> Conv:
    params = reader.tensor("convolution parameters")
    filters_n = reader.count("number of filters")
    size, stride, padding = _pairs(reader, "convolution geometry")
    filters = reader.alias("convolution filters")
    biases = reader.alias("convolution biases")
    _learning_rates(reader, "con_")
    if filters.shape[0] != filters_n or filters.shape[2:] != size:
        raise reader.fail(f"convolution filters {filters.shape} disagree with {filters_n}x{size}")
    if filters.size + biases.size != params.size or biases.size != filters_n:
        raise reader.fail("convolution parameter sizes are inconsistent")
    weights = _slice(reader, params, 0, filters, "filters")
    bias = _slice(reader, params, filters.size, biases, "biases").reshape(-1)
    return Conv(weights, bias, stride, padding)


def _read_affine(reader: _Reader) -> Affine:
    params = reader.tensor("affine parameters")
    gamma = reader.alias("affine gamma")
    beta = reader.alias("affine beta")
    mode = reader.integer("affine mode")
    if mode != 0 or gamma.shape[2:] != (1, 1) or gamma.shape != beta.shape:
        raise reader.fail(f"unsupported affine layer (mode {mode}, gamma {gamma.shape})")
    if gamma.size + beta.size != params.size:
        raise reader.fail("affine parameter sizes are inconsistent")
    scale = _slice(reader, params, 0, gamma, "gamma").reshape(-1)
    shift = _slice(reader, params, gamma.size, beta, "beta").reshape(-1)
    return Affine(scale, shift)


def _read_max_pool(reader: _Reader) -> MaxPool:
    return MaxPool(*_pairs(reader, "max pooling geometry"))


def _read_avg_pool(reader: _Reader) -> AvgPool:
    return AvgPool(*_pairs(reader, "average pooling geometry"))


def _read_fc(reader: _Reader) -> FullyConnected:
    outputs = reader.count("fc outputs")
    inputs = reader.count("fc inputs")
    params = reader.tensor("fc parameters")
    weights = reader.alias("fc weights")
    biases = reader.alias("fc biases")
    bias_mode = reader.integer("fc bias mode")
    _learning_rates(reader, "fc_")
    if weights.shape != (inputs, outputs, 1, 1) or bias_mode not in (0, 1):
        raise reader.fail(f"unsupported fc layer ({weights.shape}, bias mode {bias_mode})")
    if weights.size + biases.size != params.size:
        raise reader.fail("fc parameter sizes are inconsistent")
    matrix = _slice(reader, params, 0, weights, "fc weights").reshape(inputs, outputs)
    has_bias = bias_mode == 0 and biases.size == outputs
    bias = _slice(reader, params, weights.size, biases, "fc bias").reshape(-1) if has_bias else None
    return FullyConnected(matrix, bias)


_READERS: dict[str, Callable[[_Reader], Layer]] = {
    "con_4": _read_con,
    "affine_": _read_affine,
    "relu_": lambda reader: Relu(),
    "max_pool_2": _read_max_pool,
    "avg_pool_2": _read_avg_pool,
    "add_prev_": lambda reader: AddPrev(0),
    "fc_2": _read_fc,
}


def _read_details(reader: _Reader, innermost: bool) -> Layer:
    """One computational layer: its details, then add_layer's bookkeeping."""
    name = reader.string("layer name")
    read = _READERS.get(name)
    if read is None:
        raise reader.fail(f"unsupported dlib layer {name!r}")
    layer = read(reader)
    for _ in range(3):
        reader.boolean(f"{name} state flag")
    for _ in range(3):
        reader.tensor(f"{name} bookkeeping tensor")
    if innermost:
        reader.integer("sample expansion factor")
    return layer


# ---------------------------------------------------------------------------------------------
# The network


def _read_loss(reader: _Reader) -> tuple[float, float]:
    """``add_loss_layer`` header and ``loss_metric_``: (margin, distance threshold)."""
    reader.expect_version(1, "loss layer")
    name = reader.string("loss name")
    if name != "loss_metric_2":
        raise reader.fail(f"unsupported loss {name!r}, expected 'loss_metric_2'")
    return reader.real("metric margin"), reader.real("metric distance threshold")


def _read_versions(reader: _Reader) -> list[int]:
    """The layers' version integers, outermost first, ending with the input layer's (3)."""
    versions: list[int] = []
    while not versions or versions[-1] != 3:
        version = reader.integer("layer version")
        if version not in (1, 2, 3):
            raise reader.fail(f"unexpected layer version {version}")
        versions.append(version)
    return versions


def _read_input(reader: _Reader) -> InputSpec:
    name = reader.string("input layer name")
    if name != "input_rgb_image_sized":
        raise reader.fail(f"unsupported input layer {name!r}")
    red, green, blue = (reader.real(f"{c} mean") for c in ("red", "green", "blue"))
    rows = reader.count("input rows")
    cols = reader.count("input columns")
    return InputSpec((red, green, blue), rows, cols)


#: What a run of n anonymous tag/skip markers stands for, in execution order.
_MARKER_RUNS: dict[int, tuple[Layer, ...]] = {1: (Tag(1),), 2: (Tag(2), Skip(1))}


def _resolve_markers(reader: _Reader, items: list[Layer | None]) -> tuple[Layer, ...]:
    """Turn anonymous tag/skip markers (None) and add_prev layers into numbered ones."""
    layers: list[Layer] = []
    run, pending_skip = 0, False
    for item in items:
        if item is None:
            run += 1
            continue
        if run:
            if run not in _MARKER_RUNS:
                raise reader.fail(f"unsupported run of {run} tag/skip layers")
            layers += _MARKER_RUNS[run]
            pending_skip = pending_skip or run == 2
            run = 0
        if isinstance(item, AddPrev):
            layers.append(AddPrev(2 if pending_skip else 1))
            pending_skip = False
        else:
            layers.append(item)
    if run:
        raise reader.fail("the network ends with a tag or skip layer")
    return tuple(layers)


def parse_resnet(data: bytes) -> ResNetSpec:
    """Parse dlib's ``dlib_face_recognition_resnet_model_v1.dat`` bytes.

    Raises :class:`~facekey.errors.ModelIntegrityError` when the bytes are truncated, malformed
    or describe a network this converter does not support.
    """
    reader = _Reader(data)
    margin, threshold = _read_loss(reader)
    versions = _read_versions(reader)
    input_spec = _read_input(reader)
    items: list[Layer | None] = []
    for position, version in enumerate(reversed(versions)):
        items.append(_read_details(reader, position == 0) if version != 1 else None)
    reader.expect_end()
    layers = _resolve_markers(reader, items)
    logger.debug("parsed dlib network: %d layers", len(layers))
    return ResNetSpec(input_spec, layers, margin, threshold)


# ---------------------------------------------------------------------------------------------
# ONNX graph construction

Shape = tuple[int, int, int]  # channels, rows, cols


def _pooled(size: int, window: int, stride: int, padding: int) -> int:
    """dlib's (and ONNX's floor-mode) output length of a convolution or pooling."""
    return 1 + (size + 2 * padding - window) // stride


@dataclass
class _Graph:
    """Accumulates ONNX nodes and initializers while tracking the current tensor's shape."""

    current: str
    shape: Shape
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[TensorProto] = field(default_factory=list)
    tags: dict[int, tuple[str, Shape]] = field(default_factory=dict)
    counter: int = 0

    def name(self, kind: str) -> str:
        """A fresh tensor name."""
        self.counter += 1
        return f"{kind}_{self.counter}"

    def constant(self, kind: str, value: NDArray[np.generic]) -> str:
        """Add an initializer and return its name."""
        name = self.name(kind)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], shape: Shape | None = None, **attrs: Any) -> str:
        """Append a node fed by ``inputs``; it becomes the current tensor."""
        output = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        self.current = output
        self.shape = shape if shape is not None else self.shape
        return output


def _add_conv(graph: _Graph, layer: Conv) -> None:
    out_c, in_c, rows, cols = layer.weights.shape
    if in_c != graph.shape[0]:
        raise ModelIntegrityError(f"convolution expects {in_c} channels, gets {graph.shape[0]}")
    (sy, sx), (py, px) = layer.stride, layer.padding
    shape = (out_c, _pooled(graph.shape[1], rows, sy, py), _pooled(graph.shape[2], cols, sx, px))
    weights = graph.constant("conv_w", layer.weights)
    bias = graph.constant("conv_b", layer.bias)
    graph.node(
        "Conv",
        [graph.current, weights, bias],
        shape,
        kernel_shape=[rows, cols],
        strides=[sy, sx],
        pads=[py, px, py, px],
    )


def _add_affine(graph: _Graph, layer: Affine) -> None:
    gamma = graph.constant("affine_gamma", layer.gamma.reshape(1, -1, 1, 1))
    beta = graph.constant("affine_beta", layer.beta.reshape(1, -1, 1, 1))
    graph.node("Mul", [graph.current, gamma])
    graph.node("Add", [graph.current, beta])


def _add_pool(graph: _Graph, layer: MaxPool | AvgPool) -> None:
    (wy, wx), (sy, sx), (py, px) = layer.window, layer.stride, layer.padding
    channels, rows, cols = graph.shape
    if isinstance(layer, AvgPool) and (wy, wx) == (0, 0):
        graph.node("GlobalAveragePool", [graph.current], (channels, 1, 1))
        return
    shape = (channels, _pooled(rows, wy, sy, py), _pooled(cols, wx, sx, px))
    attrs: dict[str, Any] = {
        "kernel_shape": [wy, wx],
        "strides": [sy, sx],
        "pads": [py, px, py, px],
    }
    if isinstance(layer, AvgPool):
        attrs["count_include_pad"] = 0
    graph.node(
        "MaxPool" if isinstance(layer, MaxPool) else "AveragePool", [graph.current], shape, **attrs
    )


def _pad_to(graph: _Graph, tensor: str, shape: Shape, target: Shape) -> str:
    """Zero-pad ``tensor`` at the end of each dimension up to ``target`` (dlib's add_prev)."""
    if shape == target:
        return tensor
    extra = [t - s for t, s in zip(target, shape, strict=True)]
    pads = graph.constant("pads", np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64))
    return graph.node("Pad", [tensor, pads], target)


def _add_prev(graph: _Graph, layer: AddPrev) -> None:
    if layer.ident not in graph.tags:
        raise ModelIntegrityError(f"add_prev{layer.ident} refers to a missing tag")
    other, other_shape = graph.tags[layer.ident]
    current, shape = graph.current, graph.shape
    target: Shape = (
        max(shape[0], other_shape[0]),
        max(shape[1], other_shape[1]),
        max(shape[2], other_shape[2]),
    )
    left = _pad_to(graph, current, shape, target)
    right = _pad_to(graph, other, other_shape, target)
    graph.node("Add", [left, right], target)


def _add_fc(graph: _Graph, layer: FullyConnected) -> None:
    inputs, outputs = layer.weights.shape
    if inputs != math.prod(graph.shape):
        raise ModelIntegrityError(f"fc expects {inputs} inputs, gets {math.prod(graph.shape)}")
    graph.node("Flatten", [graph.current], axis=1)
    graph.node("MatMul", [graph.current, graph.constant("fc_w", layer.weights)], (outputs, 1, 1))
    if layer.bias is not None:
        graph.node("Add", [graph.current, graph.constant("fc_b", layer.bias)])


def _add_layer(graph: _Graph, layer: Layer) -> None:
    """Append one layer's nodes."""
    if isinstance(layer, Conv):
        _add_conv(graph, layer)
    elif isinstance(layer, Affine):
        _add_affine(graph, layer)
    elif isinstance(layer, Relu):
        graph.node("Relu", [graph.current])
    elif isinstance(layer, MaxPool | AvgPool):
        _add_pool(graph, layer)
    elif isinstance(layer, Tag):
        graph.tags[layer.ident] = (graph.current, graph.shape)
    elif isinstance(layer, Skip):
        if layer.ident not in graph.tags:
            raise ModelIntegrityError(f"skip{layer.ident} refers to a missing tag")
        graph.current, graph.shape = graph.tags[layer.ident]
    elif isinstance(layer, AddPrev):
        _add_prev(graph, layer)
    else:
        _add_fc(graph, layer)


def _add_preprocessing(graph: _Graph, spec: InputSpec) -> None:
    """uint8 NHWC RGB → float NCHW ``(pixel - mean) / 256``, like dlib's input_rgb_image_sized."""
    means = graph.constant("means", np.array(spec.means, dtype=np.float32).reshape(1, 3, 1, 1))
    scale = graph.constant("scale", np.array(1.0 / 256.0, dtype=np.float32))
    graph.node("Transpose", [graph.current], perm=[0, 3, 1, 2])
    graph.node("Cast", [graph.current], to=TensorProto.FLOAT)
    graph.node("Sub", [graph.current, means])
    graph.node("Mul", [graph.current, scale])


def build_onnx(spec: ResNetSpec) -> bytes:
    """Build the ONNX graph equivalent to ``spec`` and return the serialized ModelProto.

    Input ``chips``: uint8 [N, rows, cols, 3] RGB face chips (dlib's ``get_face_chip``
    layout). Output ``embeddings``: float32 [N, 128], the raw (unnormalised) dlib descriptors.
    """
    rows, cols = spec.input.rows, spec.input.cols
    graph = _Graph(current=INPUT_NAME, shape=(3, rows, cols))
    _add_preprocessing(graph, spec.input)
    for layer in spec.layers:
        _add_layer(graph, layer)
    graph.nodes[-1].output[0] = OUTPUT_NAME
    chips = helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", rows, cols, 3])
    out = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", spec.embedding_size])
    onnx_graph = helper.make_graph(
        graph.nodes, "dlib_resnet_v1", [chips], [out], initializer=graph.initializers
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="facekey.dlib_convert",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    payload: bytes = model.SerializeToString()
    return payload


# ---------------------------------------------------------------------------------------------
# Cache


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(target: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary file beside ``target``, then rename it into place."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def converted_model(source: Path, cache_dir: Path) -> Path:
    """The ONNX file converted from the dlib model ``source``, converting it on first use.

    The file is ``cache_dir / "dlib_resnet_v1-<sha256[:16]>.onnx"``, keyed by the source's
    content; it is written atomically, so concurrent processes never see a partial file.
    """
    if not source.is_file():
        raise ModelNotFound(f"dlib model file not found: {source}")
    target = cache_dir / f"{CACHE_PREFIX}{_sha256(source)[:16]}.onnx"
    if target.is_file():
        logger.debug("using cached ONNX model %s", target)
        return target
    started = time.perf_counter()
    payload = build_onnx(parse_resnet(source.read_bytes()))
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, payload)
    logger.info("converted %s to %s in %.2f s", source, target, time.perf_counter() - started)
    return target
