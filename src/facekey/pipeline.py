"""The face pipeline: bytes → decode → detect → 5 landmarks → align → quality (and masks) →
embed.

A :class:`FacePipeline` holds one engine, one detector (or fallback chain) and the landmark
model; it is built once per process and is not shared between threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from facekey.config import ImageLimits, Settings
from facekey.engines.base import Engine
from facekey.engines.registry import load_engine
from facekey.errors import NoFace
from facekey.imaging import decode_image
from facekey.templates import Template
from facekey.vision.detectors import Detector, make_detector
from facekey.vision.landmarks import DlibLandmarker
from facekey.vision.occlusion import mask_probability
from facekey.vision.quality import Quality, measure_quality
from facekey.vision.types import Detection, FloatArray, ImageArray

STAGES = ("decode", "detect", "landmarks", "align", "embed", "quality")


@dataclass(frozen=True)
class Face:
    """One face found in an image, with its template."""

    detection: Detection
    landmarks: FloatArray = field(repr=False)
    quality: Quality
    template: Template = field(repr=False)


@dataclass
class StageTimer:
    """Milliseconds spent per pipeline stage, summed over the calls it was passed to."""

    ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1000.0


class FacePipeline:
    """Finds and embeds every face in an image."""

    def __init__(
        self,
        *,
        engine: Engine,
        detector: Detector,
        landmarker: DlibLandmarker | None = None,
        limits: ImageLimits | None = None,
    ) -> None:
        self.engine = engine
        self.detector = detector
        self.landmarker = landmarker or DlibLandmarker()
        self.limits = limits or ImageLimits()

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Engine | None = None) -> FacePipeline:
        """The pipeline the settings describe (engine and detector chain by name)."""
        return cls(
            engine=engine or load_engine(settings.engine, settings),
            detector=make_detector(settings.detectors),
            limits=settings.images,
        )

    def faces_in_bytes(self, data: bytes, timer: StageTimer | None = None) -> list[Face]:
        """Decode untrusted image bytes and return every face, largest first."""
        timer = timer or StageTimer()
        with timer.stage("decode"):
            image = decode_image(data, self.limits)
        return self.faces(image, timer)

    def faces(self, image: ImageArray, timer: StageTimer | None = None) -> list[Face]:
        """Every face in a decoded RGB image, largest first; chips embedded in one batch."""
        timer = timer or StageTimer()
        with timer.stage("detect"):
            detections = self.detector.detect(image)
        if not detections:
            return []
        with timer.stage("landmarks"):
            shapes = [self.landmarker.locate(image, d) for d in detections]
        with timer.stage("align"):
            chips = np.stack(
                [self.engine.align(image, s, d) for s, d in zip(shapes, detections, strict=True)]
            )
        with timer.stage("embed"):
            vectors = self.engine.embed(chips)
        with timer.stage("quality"):
            faces = [
                self._face(image, detection, shape, chip, vector)
                for detection, shape, chip, vector in zip(
                    detections, shapes, chips, vectors, strict=True
                )
            ]
        return sorted(faces, key=lambda f: f.quality.eye_distance_px, reverse=True)

    def _face(
        self,
        image: ImageArray,
        detection: Detection,
        shape: FloatArray,
        chip: ImageArray,
        vector: FloatArray,
    ) -> Face:
        quality = measure_quality(shape, chip, mask_probability(image, shape, detection))
        info = self.engine.info
        template = Template(info.id, info.version, vector, quality.score)
        return Face(detection, shape, quality, template)


def main_face(faces: list[Face], image_shape: tuple[int, ...]) -> Face:
    """The face the picture is of: large, inside the frame and near the centre.

    Raises :class:`NoFace` when there is none. A face's weight is its visible area times the
    square of its closeness to the centre (1 at the centre, 0 at a corner), so a bystander
    cut by the frame edge loses to the subject even when their box is larger.
    """
    if not faces:
        raise NoFace("no face was found in the image")
    height, width = image_shape[:2]
    half_diagonal = float(np.hypot(width, height)) / 2.0

    def weight(face: Face) -> float:
        box = face.detection.box
        cx, cy = box.center
        closeness = 1.0 - float(np.hypot(cx - width / 2, cy - height / 2)) / half_diagonal
        return box.clipped(width, height).area * max(0.05, closeness) ** 2

    return max(faces, key=weight)
