"""Face detectors: a narrow protocol, dlib's HOG detector, and a fallback chain."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from facekey.vision.types import Box, Detection, ImageArray


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB uint8 image (H×W×3)."""

    name: str

    def detect(self, image: ImageArray) -> list[Detection]:
        """All faces found, best first. An empty list means none."""
        ...


HOG_PIXEL_BUDGET: Final = 640_000
"""The most pixels one HOG pass scans (after its upsampling); about 0.1 s of one core."""


class HogDetector:
    """dlib's HOG + linear SVM frontal face detector (CC0).

    HOG's cost grows with the pixels it scans, and upsampling quadruples them; an image that
    would exceed :data:`HOG_PIXEL_BUDGET` is scanned at a reduced scale instead (faces it then
    misses are smaller than about 80 px per million pixels of the original, far below the
    size a payment photo needs), and the boxes are scaled back.
    """

    def __init__(self, upsample: int = 0, pixel_budget: int = HOG_PIXEL_BUDGET) -> None:
        import dlib

        self.upsample = upsample
        self.pixel_budget = pixel_budget
        self.name = f"hog{upsample}"
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, image: ImageArray) -> list[Detection]:
        height, width = image.shape[:2]
        scanned = height * width * 4**self.upsample
        scale = min(1.0, math.sqrt(self.pixel_budget / scanned)) if scanned else 1.0
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR)
            image = np.asarray(small)
        rects, scores, _ = self._detector.run(image, self.upsample, 0.0)
        found = [
            Detection(
                Box(
                    r.left() / scale,
                    r.top() / scale,
                    (r.right() + 1) / scale,
                    (r.bottom() + 1) / scale,
                ),
                float(s),
                self.name,
            )
            for r, s in zip(rects, scores, strict=True)
        ]
        return sorted(found, key=lambda d: d.score, reverse=True)


class ChainDetector:
    """Tries detectors in order; the first that finds a face answers.

    A miss by a cheap detector is retried by the next, so it counts as a failure to acquire
    only when every detector in the chain misses.
    """

    def __init__(self, detectors: Sequence[Detector]) -> None:
        if not detectors:
            raise ValueError("a detector chain needs at least one detector")
        self.detectors = tuple(detectors)
        self.name = ">".join(d.name for d in self.detectors)

    def detect(self, image: ImageArray) -> list[Detection]:
        for detector in self.detectors:
            found = detector.detect(image)
            if found:
                return found
        return []


DETECTOR_NAMES: Final = ("hog0", "hog1", "hog2", "blazeface-short", "blazeface-full")


def make_detector(names: Sequence[str]) -> Detector:
    """A detector, or a fallback chain of several, by name (see :data:`DETECTOR_NAMES`)."""
    detectors = [_make_one(name) for name in names]
    return detectors[0] if len(detectors) == 1 else ChainDetector(detectors)


def _make_one(name: str) -> Detector:
    if name.startswith("hog") and name in DETECTOR_NAMES:
        return HogDetector(upsample=int(name[3:]))
    if name in ("blazeface-short", "blazeface-full"):
        from facekey.vision.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(model="short" if name.endswith("short") else "full")
    raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTOR_NAMES)}")
