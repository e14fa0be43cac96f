"""1:1 comparison of two image files, for the CLI and for integrators trying an engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facekey.calibration import shipped_calibration
from facekey.config import Settings
from facekey.imaging import read_image_file
from facekey.pipeline import Face, FacePipeline, main_face

#: The operating point of a plain 1:1 comparison: one false match in ten thousand.
DEFAULT_FMR_TARGET = 1e-4


@dataclass(frozen=True)
class Comparison:
    """The score of two main faces and, for an engine with a calibration table, the decision
    at ``fmr_target`` (``fmr``, ``threshold`` and ``match`` are None without one)."""

    engine: str
    score: float
    quality: tuple[float, float]
    fmr_target: float
    fmr: float | None = None
    threshold: float | None = None
    match: bool | None = None


@dataclass(frozen=True)
class DescribedFace:
    """A face found in an image: box (left, top, right, bottom), detector and quality."""

    box: tuple[float, float, float, float]
    detector: str
    detector_score: float
    quality: float
    eye_distance_px: float
    sharpness: float
    brightness: float
    yaw_deg: float
    pitch_deg: float


@dataclass(frozen=True)
class FacesInImage:
    faces: list[DescribedFace]


def compare_files(
    first: Path, second: Path, settings: Settings, *, fmr_target: float = DEFAULT_FMR_TARGET
) -> Comparison:
    """Score the main faces of two files; decide at the engine's calibrated threshold."""
    pipeline = FacePipeline.from_settings(settings)
    a, b = (_main(pipeline, path) for path in (first, second))
    score = a.template.similarity(b.template)
    engine = pipeline.engine.info.id
    quality = (round(a.quality.score, 3), round(b.quality.score, 3))
    table = shipped_calibration(pipeline.engine.info)
    if table is None:
        return Comparison(engine, round(score, 6), quality, fmr_target)
    threshold = table.threshold_for(max(fmr_target, table.min_fmr))
    return Comparison(
        engine,
        round(score, 6),
        quality,
        fmr_target,
        fmr=table.fmr_at(score),
        threshold=round(threshold, 6),
        match=score >= threshold,
    )


def describe_faces(path: Path, settings: Settings) -> FacesInImage:
    """Every face in a file: box, detector, score and quality measures."""
    pipeline = FacePipeline.from_settings(settings)
    faces = pipeline.faces(read_image_file(path, settings.images))
    return FacesInImage([_describe(face) for face in faces])


def _main(pipeline: FacePipeline, path: Path) -> Face:
    image = read_image_file(path, pipeline.limits)
    return main_face(pipeline.faces(image), image.shape)


def _describe(face: Face) -> DescribedFace:
    box = face.detection.box
    q = face.quality
    return DescribedFace(
        box=(round(box.left, 1), round(box.top, 1), round(box.right, 1), round(box.bottom, 1)),
        detector=face.detection.detector,
        detector_score=round(face.detection.score, 3),
        quality=round(q.score, 3),
        eye_distance_px=round(q.eye_distance_px, 1),
        sharpness=round(q.sharpness, 1),
        brightness=round(q.brightness, 3),
        yaw_deg=round(q.yaw_deg, 1),
        pitch_deg=round(q.pitch_deg, 1),
    )
