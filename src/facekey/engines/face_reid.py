"""``face-reid-0095``: Intel's face-reidentification-retail-0095 (256-d, Apache-2.0).

The default engine of new networks: a MobileNetV2 of 0.59 GFLOPs that holds up under masks
where dlib's ResNet does not (``../shared/MEASUREMENTS.md``). The ONNX file ships in
``facekey/models/face-reid-0095`` with its licence and notice; its sha256 is checked before
onnxruntime parses it.

Alignment: the network's own 128×128 template is facekey's canonical face frame
(:func:`facekey.vision.align.canonical_chip`): a least-squares similarity transform from
BlazeFace's keypoints (both eyes, the nose tip and the mouth centre, which hold their place on
masked faces), or from dlib's five points when another detector found the face.

Speed: the file's 48 PRelu activations have one slope each; they are loaded as the LeakyRelu
they equal, which onnxruntime fuses into the convolutions (12.3 → 4.1 ms per face on one
thread, embeddings equal within 3e-6; see ``scalar_prelu_as_leaky_relu``).
"""

from __future__ import annotations

from importlib.resources import as_file, files
from typing import Any, Final

import numpy as np

from facekey.config import Settings
from facekey.engines.base import EngineInfo, l2_normalize
from facekey.engines.onnx_runtime import scalar_prelu_as_leaky_relu, single_thread_session
from facekey.errors import ModelNotFound
from facekey.integrity import verify_sha256
from facekey.vision.align import CANONICAL_SIZE, canonical_chip
from facekey.vision.types import Detection, FloatArray, ImageArray

ENGINE_ID: Final = "face-reid-0095"
CHIP_SIZE: Final = CANONICAL_SIZE
INFO: Final = EngineInfo(id=ENGINE_ID, version="1", dimension=256, chip_size=CHIP_SIZE)
MODEL_FOLDER: Final = ("models", "face-reid-0095")
MODEL_FILE: Final = "face-reidentification-retail-0095.onnx"
MODEL_SHA256: Final = "80020e6b7f85f79024d74ed2ba9af41beb92ec3e5eede1ffb15810308464af2e"


class FaceReidEngine:
    """face-reidentification-retail-0095 on onnxruntime, one thread."""

    def __init__(self, *, package: str = "facekey", sha256: str = MODEL_SHA256) -> None:
        resource = files(package).joinpath(*MODEL_FOLDER, MODEL_FILE)
        if not resource.is_file():
            raise ModelNotFound(f"packaged model file {MODEL_FILE!r} is missing")
        with as_file(resource) as path:
            verify_sha256(path, sha256)
            graph = scalar_prelu_as_leaky_relu(path.read_bytes())
        self._session: Any = single_thread_session(graph)
        self._input = self._session.get_inputs()[0].name

    @property
    def info(self) -> EngineInfo:
        return INFO

    def align(
        self, image: ImageArray, landmarks: FloatArray, detection: Detection | None = None
    ) -> ImageArray:
        return canonical_chip(image, landmarks, detection)

    def embed(self, chips: ImageArray) -> FloatArray:
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected N×{CHIP_SIZE}×{CHIP_SIZE}×3 chips, got {chips.shape}")
        if len(chips) == 0:
            return np.zeros((0, INFO.dimension), dtype=np.float32)
        # BGR, channels first, 0..255: the network scales its input itself.
        batch = np.ascontiguousarray(chips[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        (out,) = self._session.run(None, {self._input: batch})
        return l2_normalize(np.asarray(out, dtype=np.float32).reshape(len(chips), -1))


def create(settings: Settings) -> FaceReidEngine:
    """Entry-point factory."""
    del settings
    return FaceReidEngine()
