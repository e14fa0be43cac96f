"""Load the packaged MediaPipe ``.tflite`` models with LiteRT, sha256-checked.

A LiteRT interpreter is not thread-safe, so every detector or landmarker owns its own
:class:`LiteModel`, and the model file is only read on first use: importing this module
loads nothing.

LiteRT's C++ logger writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to file
descriptor 2 when the first interpreter allocates its tensors, whatever the Python logging
settings; neither an environment variable nor an interpreter option turns it off (short of
leaving out XNNPACK, which makes the models 3-4 times slower). So :func:`load_interpreter`
holds back what is written to fd 2 while it allocates and passes on all but that line.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.resources import as_file, files
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Final, cast

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


#: The line LiteRT's logger writes on stderr when it applies its default CPU delegate.
DELEGATE_NOTICE: Final = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
# Redirecting fd 2 is process-wide: one redirection at a time.
_STDERR_LOCK: Final = threading.Lock()


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
    with _without_delegate_notice():
        interpreter.allocate_tensors()
    return interpreter


def _scratch() -> IO[bytes]:
    """An anonymous file in memory where the kernel has them (nothing on any filesystem: a
    device that stores nothing must not write even a deleted temporary file), else a
    temporary file."""
    if hasattr(os, "memfd_create"):
        return open(os.memfd_create("facekey-stderr", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()


@contextmanager
def _without_delegate_notice() -> Iterator[None]:
    """Hold back what anything in the process writes to fd 2 meanwhile, then pass it on
    without LiteRT's delegate notice (other threads' lines are delayed, never lost)."""
    with _STDERR_LOCK, _scratch() as held:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (a daemon): nothing to keep clean
            saved = -1
        if saved < 0:
            yield
            return
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [
                line
                for line in held.read().splitlines(keepends=True)
                if not line.startswith(DELEGATE_NOTICE)
            ]
            if kept:
                with open(2, "wb", closefd=False) as stderr:
                    stderr.write(b"".join(kept))


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
