"""``onnx-arcface``: an operator-supplied InsightFace-format ArcFace ONNX model.

The file is registered with ``facekey models add PATH --sha256 DIGEST --engine onnx-arcface``.
Input: float32 N×3×112×112 RGB scaled to [-1, 1]; output: N×D embeddings. The engine version
carries the file's digest, so templates of two different model files never compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

from facekey.config import Settings
from facekey.engines.base import EngineInfo, l2_normalize
from facekey.engines.onnx_runtime import single_thread_session
from facekey.errors import ModelIntegrityError
from facekey.integrity import PinnedFiles
from facekey.vision.align import similarity_chip
from facekey.vision.landmarks import eye_centers
from facekey.vision.types import Detection, FloatArray, ImageArray

ENGINE_ID: Final = "onnx-arcface"
CHIP_SIZE: Final = 112
# InsightFace's reference eye centres, and where dlib's "base of the nose" point falls on it
# (InsightFace's own nose point is the tip, a few pixels higher).
_REFERENCE: Final = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 76.0]], np.float32)


class OnnxArcFaceEngine:
    """ArcFace-style ONNX model on onnxruntime, one thread."""

    def __init__(self, model: Path, sha256: str) -> None:
        self._session: Any = single_thread_session(model)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        self._input = inputs[0].name
        dimension = _check_shapes(inputs[0].shape, outputs[0].shape)
        self._info = EngineInfo(ENGINE_ID, f"sha256:{sha256[:16]}", dimension, CHIP_SIZE)

    @property
    def info(self) -> EngineInfo:
        return self._info

    def align(
        self, image: ImageArray, landmarks: FloatArray, detection: Detection | None = None
    ) -> ImageArray:
        del detection  # aligned on dlib's points only
        source = np.vstack([np.stack(eye_centers(landmarks)), landmarks[4:5]])
        return similarity_chip(image, source, _REFERENCE, CHIP_SIZE)

    def embed(self, chips: ImageArray) -> FloatArray:
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected N×{CHIP_SIZE}×{CHIP_SIZE}×3 chips, got {chips.shape}")
        batch = (chips.astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 127.5
        (out,) = self._session.run(None, {self._input: batch})
        return l2_normalize(np.asarray(out, dtype=np.float32).reshape(len(chips), -1))


def _check_shapes(input_shape: list[Any], output_shape: list[Any]) -> int:
    """The model must take N×3×112×112 and return N×D; returns D."""
    if len(input_shape) != 4 or list(input_shape[1:]) != [3, CHIP_SIZE, CHIP_SIZE]:
        raise ModelIntegrityError(
            f"an ArcFace model takes N×3×{CHIP_SIZE}×{CHIP_SIZE} input, this one {input_shape}"
        )
    if len(output_shape) != 2 or not isinstance(output_shape[1], int):
        raise ModelIntegrityError(f"an ArcFace model returns N×D embeddings, not {output_shape}")
    return int(output_shape[1])


def create(settings: Settings) -> OnnxArcFaceEngine:
    """Entry-point factory: the most recently registered ``onnx-arcface`` model file."""
    record = PinnedFiles(settings.models_dir).latest(ENGINE_ID)
    return OnnxArcFaceEngine(record.path(settings.models_dir), record.sha256)
