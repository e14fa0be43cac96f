"""``fake``: a deterministic, model-free engine for unit tests of the logic around engines.

It embeds a coarse grey-level thumbnail of the chip, so the same picture gives the same
template and very different pictures differ. It recognises nobody; never deploy it.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from facekey.config import Settings
from facekey.engines.base import EngineInfo, l2_normalize
from facekey.vision.align import similarity_chip
from facekey.vision.landmarks import eye_centers
from facekey.vision.types import Detection, FloatArray, ImageArray

INFO: Final = EngineInfo(id="fake", version="1", dimension=128, chip_size=64)
_EYES: Final = np.array([[20.0, 24.0], [44.0, 24.0]], dtype=np.float32)


class FakeEngine:
    """Thumbnail embeddings; aligns on the eye centres only."""

    @property
    def info(self) -> EngineInfo:
        return INFO

    def align(
        self, image: ImageArray, landmarks: FloatArray, detection: Detection | None = None
    ) -> ImageArray:
        del detection  # aligned on dlib's points only
        eyes = np.stack(eye_centers(landmarks))
        return similarity_chip(image, eyes, _EYES, INFO.chip_size)

    def embed(self, chips: ImageArray) -> FloatArray:
        grey = chips.astype(np.float32).mean(axis=3)
        n = len(grey)
        thumb = grey.reshape(n, 16, 4, 8, 8).mean(axis=(2, 4)).reshape(n, INFO.dimension)
        return l2_normalize(thumb - thumb.mean(axis=1, keepdims=True))


def create(settings: Settings) -> FakeEngine:
    """Entry-point factory."""
    del settings
    return FakeEngine()
