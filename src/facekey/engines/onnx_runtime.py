"""onnxruntime sessions pinned to one thread: facekey scales with processes, not threads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facekey.errors import MissingExtra, ModelIntegrityError


def single_thread_session(model: Path | bytes) -> Any:
    """An onnxruntime CPU session with one intra-op and one inter-op thread."""
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
