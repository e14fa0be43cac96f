"""Face detectors: a narrow protocol, dlib's HOG detector, and a fallback chain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

from facekey.vision.types import Box, Detection, ImageArray


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB uint8 image (H×W×3)."""

    name: str

    def detect(self, image: ImageArray) -> list[Detection]:
        """All faces found, best first. An empty list means none."""
        ...


class HogDetector:
    """dlib's HOG + linear SVM frontal face detector (CC0)."""

    def __init__(self, upsample: int = 0) -> None:
        import dlib

        self.upsample = upsample
        self.name = f"hog{upsample}"
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, image: ImageArray) -> list[Detection]:
        rects, scores, _ = self._detector.run(image, self.upsample, 0.0)
        found = [
            Detection(Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(s), self.name)
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
