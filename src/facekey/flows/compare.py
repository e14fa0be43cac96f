"""1:1 comparison of two image files, for the CLI and for integrators trying an engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facekey.calibration import shipped_calibration
from facekey.config import Settings
from facekey.imaging import read_image_file
from facekey.pipeline import Face, FacePipeline, main_face

#: The operating point of a plain 1:1 comparison: one false match in ten thousand.
DEFAULT_FMR_TARGET = 1e-4


def compare_files(
    first: Path, second: Path, settings: Settings, *, fmr_target: float = DEFAULT_FMR_TARGET
) -> dict[str, Any]:
    """Score the main faces of two files; decide at the engine's calibrated threshold."""
    pipeline = FacePipeline.from_settings(settings)
    a, b = (_main(pipeline, path) for path in (first, second))
    score = a.template.similarity(b.template)
    result: dict[str, Any] = {
        "engine": pipeline.engine.info.id,
        "score": round(score, 6),
        "quality": [round(a.quality.score, 3), round(b.quality.score, 3)],
    }
    table = shipped_calibration(pipeline.engine.info)
    if table is not None:
        threshold = table.threshold_for(max(fmr_target, table.min_fmr))
        result |= {
            "fmr": table.fmr_at(score),
            "fmr_target": fmr_target,
            "threshold": round(threshold, 6),
            "match": score >= threshold,
        }
    return result


def describe_faces(path: Path, settings: Settings) -> dict[str, Any]:
    """Every face in a file: box, detector, score and quality measures."""
    pipeline = FacePipeline.from_settings(settings)
    faces = pipeline.faces(read_image_file(path, settings.images))
    return {"faces": [_describe(face) for face in faces]}


def _main(pipeline: FacePipeline, path: Path) -> Face:
    image = read_image_file(path, pipeline.limits)
    return main_face(pipeline.faces(image), image.shape)


def _describe(face: Face) -> dict[str, Any]:
    box = face.detection.box
    q = face.quality
    return {
        "box": [round(v, 1) for v in (box.left, box.top, box.right, box.bottom)],
        "detector": face.detection.detector,
        "detector_score": round(face.detection.score, 3),
        "quality": round(q.score, 3),
        "eye_distance_px": round(q.eye_distance_px, 1),
        "sharpness": round(q.sharpness, 1),
        "brightness": round(q.brightness, 3),
        "yaw_deg": round(q.yaw_deg, 1),
        "pitch_deg": round(q.pitch_deg, 1),
    }
