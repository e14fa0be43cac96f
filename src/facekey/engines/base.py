"""The recognition engine protocol.

An engine turns aligned face chips into embeddings. Alignment belongs to the engine because
each model was trained on its own crop; the pipeline hands it the image and the 5-point
landmarks and the engine cuts its chip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from facekey.vision.types import Detection, FloatArray, ImageArray


@dataclass(frozen=True)
class EngineInfo:
    """What a template records about the engine that made it."""

    id: str
    version: str
    dimension: int
    chip_size: int


@runtime_checkable
class Engine(Protocol):
    """Aligns faces and embeds chips. Implementations load their model on construction."""

    @property
    def info(self) -> EngineInfo:
        """Identity and shapes of this engine."""
        ...

    def align(
        self, image: ImageArray, landmarks: FloatArray, detection: Detection | None = None
    ) -> ImageArray:
        """Cut the engine's chip (chip_size² RGB) from ``image`` given dlib's 5 points.

        ``detection`` is the face's detection, whose own keypoints (BlazeFace's) an engine may
        prefer to dlib's points; engines that do not use it ignore it.
        """
        ...

    def embed(self, chips: ImageArray) -> FloatArray:
        """Embed N×S×S×3 uint8 RGB chips into N×D float32 unit vectors."""
        ...


def l2_normalize(vectors: FloatArray) -> FloatArray:
    """Scale each row to unit length (rows of zeros stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: FloatArray = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit.astype(np.float32)
