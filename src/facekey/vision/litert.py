"""Load the packaged MediaPipe ``.tflite`` models with LiteRT, sha256-checked.

A LiteRT interpreter is not thread-safe, so every detector or landmarker owns its own
:class:`LiteModel`, and the model file is only read on first use: importing this module
loads nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import as_file, files
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, cast

import numpy as np

from facekey.errors import MissingExtra, ModelNotFound
from facekey.integrity import verify_sha256
from facekey.vision.types import FloatArray

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from ai_edge_litert.interpreter import Interpreter

#: sha256 of every model file shipped in ``facekey/models/mediapipe`` (see its NOTICE.md).
PINNED_SHA256: Final[Mapping[str, str]] = MappingProxyType(
    {
        "face_detection_short_range.tflite": (
            "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"
        ),
        "face_detection_full_range.tflite": (
            "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"
        ),
        "face_landmark.tflite": (
            "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493"
        ),
    }
)


def model_file(name: str) -> Traversable:
    """The packaged model file ``name``; raises :class:`ModelNotFound` if it is missing."""
    resource = files("facekey") / "models" / "mediapipe" / name
    if not resource.is_file():
        raise ModelNotFound(f"packaged model file {name!r} is missing")
    return resource


def _interpreter_class() -> type[Interpreter]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise MissingExtra(
            "the MediaPipe models need ai-edge-litert (pip install ai-edge-litert)"
        ) from exc
    return cast("type[Interpreter]", Interpreter)


def load_interpreter(name: str, sha256: str | None = None) -> Interpreter:
    """A ready (tensors allocated) single-threaded interpreter for the packaged model ``name``.

    The file's sha256 must equal ``sha256`` (default: the pinned value of ``name``), else
    :class:`ModelIntegrityError` is raised before the model is parsed.
    """
    expected = sha256 if sha256 is not None else PINNED_SHA256.get(name)
    if expected is None:
        raise ModelNotFound(f"no pinned sha256 for model {name!r}")
    with as_file(model_file(name)) as path:
        verify_sha256(path, expected)
        interpreter = _interpreter_class()(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


class LiteModel:
    """One packaged model with its own interpreter, loaded on the first :meth:`run`.

    Not thread-safe: give each thread (or each detector instance) its own ``LiteModel``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._interpreter: Interpreter | None = None

    @property
    def interpreter(self) -> Interpreter:
        """The interpreter, loaded (and sha256-checked) on first access."""
        if self._interpreter is None:
            self._interpreter = load_interpreter(self.name)
        return self._interpreter

    def run(self, tensor: FloatArray) -> list[FloatArray]:
        """Run the model on one input tensor; the outputs in the model's output order."""
        interpreter = self.interpreter
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
        interpreter.invoke()
        return [
            np.array(interpreter.get_tensor(detail["index"]), dtype=np.float32)
            for detail in interpreter.get_output_details()
        ]
