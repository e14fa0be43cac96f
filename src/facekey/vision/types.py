"""Value types shared by the detectors, landmarkers and the pipeline.

Coordinates are in pixels of the decoded RGB image, x to the right and y down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]  # H×W×3 RGB, uint8, C-contiguous


@dataclass(frozen=True)
class Box:
    """An axis-aligned face box."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other``."""
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.bottom, other.bottom) - max(self.top, other.top)
        inter = max(0.0, w) * max(0.0, h)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clipped(self, width: int, height: int) -> Box:
        """This box limited to an image of ``width`` × ``height`` pixels."""
        return Box(
            max(0.0, self.left),
            max(0.0, self.top),
            min(float(width), self.right),
            min(float(height), self.bottom),
        )


@dataclass(frozen=True)
class Detection:
    """One face found by a detector.

    ``keypoints`` are the detector's own coarse points where it has them (BlazeFace gives six:
    right eye, left eye, nose tip, mouth, right ear, left ear, as seen in the image), else None.
    """

    box: Box
    score: float
    detector: str
    keypoints: FloatArray | None = field(default=None, compare=False, repr=False)
