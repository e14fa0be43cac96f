"""dlib's 5-point landmarks (eye corners and the base of the nose) from a face box."""

from __future__ import annotations

import dlib
import numpy as np

from facekey.vision.dlib_models import dlib_model_path
from facekey.vision.types import Box, Detection, FloatArray, ImageArray


class DlibLandmarker:
    """5-point shape predictor. Points, in dlib's order: the eye on the image's right
    (outer, inner corner), the eye on the image's left (outer, inner), the base of the nose."""

    def __init__(self) -> None:
        self._predictor = dlib.shape_predictor(
            str(dlib_model_path("shape_predictor_5_face_landmarks.dat"))
        )

    def locate(self, image: ImageArray, detection: Detection) -> FloatArray:
        """5×2 float32 landmark coordinates for the face in ``detection``."""
        box = _box_for_predictor(detection)
        rect = dlib.rectangle(round(box.left), round(box.top), round(box.right), round(box.bottom))
        shape = self._predictor(image, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def _box_for_predictor(detection: Detection) -> Box:
    """The predictor was trained on HOG boxes; other detectors' boxes are made alike.

    BlazeFace boxes sit lower on the face than HOG's: move them up by 5 % of their height and
    make them square, which places the eyes well even on masked faces.
    """
    box = detection.box
    if detection.detector.startswith("hog"):
        return box
    cx, cy = box.center
    side = max(box.width, box.height)
    cy -= 0.05 * box.height
    return Box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def eye_centers(landmarks: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(image-left eye centre, image-right eye centre) from dlib's 5 points."""
    first = landmarks[0:2].mean(axis=0)
    second = landmarks[2:4].mean(axis=0)
    return (first, second) if first[0] <= second[0] else (second, first)
