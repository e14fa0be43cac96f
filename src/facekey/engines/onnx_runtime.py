"""onnxruntime sessions pinned to one thread: facekey scales with processes, not threads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from facekey.errors import MissingExtra, ModelIntegrityError


def single_thread_session(model: Path | bytes) -> Any:
    """An onnxruntime CPU session with one intra-op and one inter-op thread."""
    # onnxruntime (1.32 on Linux) starts Microsoft's 1DS telemetry when it is imported: a
    # device id under ~/.cache/Microsoft, an event store and .ses files in $TMPDIR, HTTPS
    # uploads. facekey writes and sends nothing it was not asked to (the edge agent's
    # filesystem test caught these files); the variable is read at import only.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MissingExtra("install onnxruntime to run ONNX models") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelIntegrityError(f"onnxruntime cannot load the model: {exc}") from exc


def scalar_prelu_as_leaky_relu(model: bytes) -> bytes:
    """The ONNX model with each PRelu of a one-value slope made the LeakyRelu it equals.

    onnxruntime runs PRelu with a generic broadcasting kernel it cannot fuse into the
    convolution before it, and that breaks its blocked memory layout: in face-reid-0095 (48
    scalar PRelus) that cost two thirds of the time. ``PRelu(x, a)`` with one ``a`` is
    ``LeakyRelu(x, alpha=a)`` for any sign and size of ``a``, which onnxruntime fuses into
    the convolution: 12.3 → 4.1 ms per face on one thread, embeddings equal within 3e-6.
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load_from_string(model)
    constants = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    nodes = []
    for node in graph.graph.node:
        slope = constants.get(node.input[1]) if node.op_type == "PRelu" else None
        if slope is not None and slope.size == 1:
            alpha = float(slope.reshape(-1)[0])
            leaky = helper.make_node(
                "LeakyRelu", [node.input[0]], list(node.output), name=node.name, alpha=alpha
            )
            nodes.append(leaky)
        else:
            nodes.append(node)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    rewritten: bytes = graph.SerializeToString()
    return rewritten
