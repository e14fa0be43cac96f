"""``dlib-resnet-v1``: dlib's face ResNet (128-d, CC0), facekey's default engine.

Two backends compute the same function, so their templates are interchangeable:

- ``onnx`` (default): an ONNX graph that facekey builds from the wheel's own ``.dat`` file,
  run on onnxruntime with one thread (about 20× faster than the dlib-bin wheel here);
- ``dlib``: dlib's own implementation, the reference.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final, Literal

import dlib
import numpy as np

from facekey.config import Settings
from facekey.engines.base import EngineInfo, l2_normalize
from facekey.engines.dlib_convert import converted_model
from facekey.engines.onnx_runtime import single_thread_session
from facekey.vision.align import dlib_chip
from facekey.vision.dlib_models import dlib_model_path
from facekey.vision.types import Detection, FloatArray, ImageArray

log = logging.getLogger(__name__)

Backend = Literal["onnx", "dlib"]
BACKENDS: Final = ("onnx", "dlib")
MODEL_FILE: Final = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE: Final = 150
CHIP_PADDING: Final = 0.25
INFO: Final = EngineInfo(id="dlib-resnet-v1", version="1", dimension=128, chip_size=CHIP_SIZE)


class DlibResnetEngine:
    """dlib's ResNet on the chosen backend; the model is loaded on construction."""

    def __init__(self, *, backend: Backend = "onnx", cache_dir: Path | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown dlib-resnet-v1 backend {backend!r}; use one of {BACKENDS}")
        self.backend: Backend = backend
        source = dlib_model_path(MODEL_FILE)
        if backend == "onnx":
            onnx_path = converted_model(source, cache_dir or Settings().models_dir / "converted")
            self._session: Any = single_thread_session(onnx_path)
        else:
            self._model: Any = dlib.face_recognition_model_v1(str(source))

    @property
    def info(self) -> EngineInfo:
        return INFO

    def align(
        self, image: ImageArray, landmarks: FloatArray, detection: Detection | None = None
    ) -> ImageArray:
        del detection  # aligned on dlib's points only
        return dlib_chip(image, landmarks, CHIP_SIZE, CHIP_PADDING)

    def embed(self, chips: ImageArray) -> FloatArray:
        return l2_normalize(self.raw_descriptors(chips))

    def raw_descriptors(self, chips: ImageArray) -> FloatArray:
        """dlib's own (unnormalised) descriptors, N×128."""
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected N×{CHIP_SIZE}×{CHIP_SIZE}×3 chips, got {chips.shape}")
        if len(chips) == 0:
            return np.zeros((0, INFO.dimension), dtype=np.float32)
        batch = np.ascontiguousarray(chips, dtype=np.uint8)
        if self.backend == "onnx":
            (out,) = self._session.run(None, {"chips": batch})
            return np.asarray(out, dtype=np.float32)
        descriptors = self._model.compute_face_descriptor(list(batch))
        return np.array([np.array(d) for d in descriptors], dtype=np.float32)


def create(settings: Settings) -> DlibResnetEngine:
    """Entry-point factory."""
    backend = settings.dlib_backend
    if backend not in BACKENDS:
        raise ValueError(f"FACEKEY_DLIB_BACKEND must be one of {BACKENDS}, not {backend!r}")
    chosen: Backend = "onnx" if backend == "onnx" else "dlib"
    return DlibResnetEngine(backend=chosen, cache_dir=settings.models_dir / "converted")
