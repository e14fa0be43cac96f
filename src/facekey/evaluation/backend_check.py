"""Check that dlib-resnet-v1's two backends give the same embeddings on real faces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facekey.config import Settings
from facekey.engines.dlib_resnet import DlibResnetEngine
from facekey.errors import FacekeyError
from facekey.evaluation.datasets import image_files
from facekey.imaging import read_image_file
from facekey.vision.detectors import make_detector
from facekey.vision.landmarks import DlibLandmarker
from facekey.vision.types import ImageArray


def compare_backends(images: Path, settings: Settings, *, limit: int = 200) -> dict[str, Any]:
    """Max |difference| and min cosine between the onnx and dlib backends' raw descriptors."""
    cache = settings.models_dir / "converted"
    onnx_engine = DlibResnetEngine(backend="onnx", cache_dir=cache)
    dlib_engine = DlibResnetEngine(backend="dlib")
    chips = _chips(image_files(images)[:limit], settings, onnx_engine)
    if len(chips) == 0:
        raise FacekeyError(f"no face found in the images under {images}")
    ours = onnx_engine.raw_descriptors(chips)
    reference = dlib_engine.raw_descriptors(chips)
    cosines = np.sum(ours * reference, axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    )
    return {
        "faces": len(chips),
        "max_abs_difference": float(np.abs(ours - reference).max()),
        "min_cosine": float(cosines.min()),
    }


def _chips(paths: list[Path], settings: Settings, engine: DlibResnetEngine) -> ImageArray:
    detector = make_detector(settings.detectors)
    landmarker = DlibLandmarker()
    chips: list[ImageArray] = []
    for path in paths:
        try:
            image = read_image_file(path, settings.images)
        except FacekeyError:
            continue
        chips.extend(
            engine.align(image, landmarker.locate(image, d)) for d in detector.detect(image)
        )
    return np.stack(chips) if chips else np.zeros((0, 150, 150, 3), dtype=np.uint8)
