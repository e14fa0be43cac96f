"""MediaPipe Face Mesh (468 3-D landmarks) on LiteRT, plus pose and blink measures.

The face is cropped as MediaPipe does: a square 1.5 times the longer side of the detection box,
centred on it, and rotated so that the eyes are level when the detector's eye keypoints are
given. The crop is scaled to 192×192, values in [0, 1]. The model answers 468 points in crop
pixels (z in the same units as x, smaller = nearer the camera) and a face-presence logit;
:class:`FaceMesh` maps the points back to image pixels.

Landmark indices used here (subject's own left/right): 1 nose tip, 10 forehead, 152 chin,
33/133 right-eye outer/inner corner, 159/145 right-eye upper/lower lid, 263/362 left-eye
outer/inner corner, 386/374 left-eye upper/lower lid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image

from facekey.vision.litert import LiteModel
from facekey.vision.types import Box, FloatArray, ImageArray

MODEL_FILE: Final = "face_landmark.tflite"
INPUT_SIZE: Final = 192
NUM_LANDMARKS: Final = 468
#: Crop side over the detection box's longer side (MediaPipe's RectTransformation scale).
ROI_SCALE: Final = 1.5

FOREHEAD, CHIN = 10, 152
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_TOP, RIGHT_EYE_BOTTOM = 33, 133, 159, 145
LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_EYE_TOP, LEFT_EYE_BOTTOM = 263, 362, 386, 374


@dataclass(frozen=True)
class Roi:
    """A square, possibly rotated image region: centre, side and angle (radians, clockwise
    on screen since y points down) of the region's x axis against the image's."""

    cx: float
    cy: float
    size: float
    angle: float = 0.0

    def affine(self, tensor_size: int) -> FloatArray:
        """2×3 matrix taking crop pixels (x, y, 1) to image pixels."""
        step = self.size / tensor_size
        cos, sin = math.cos(self.angle) * step, math.sin(self.angle) * step
        half = tensor_size / 2.0
        tx = self.cx - cos * half + sin * half
        ty = self.cy - sin * half - cos * half
        return np.array([[cos, -sin, tx], [sin, cos, ty]], dtype=np.float64).astype(np.float32)


def face_roi(box: Box, keypoints: FloatArray | None = None, scale: float = ROI_SCALE) -> Roi:
    """MediaPipe's landmark ROI for a detection: box centre, ``scale`` × longer side, and the
    angle of the eye line (BlazeFace keypoints 0 and 1) when ``keypoints`` are given."""
    cx, cy = box.center
    size = max(box.width, box.height) * scale
    if keypoints is None or len(keypoints) < 2:
        return Roi(cx, cy, size)
    (x0, y0), (x1, y1) = keypoints[0], keypoints[1]
    return Roi(cx, cy, size, math.atan2(float(y1 - y0), float(x1 - x0)))


def crop(image: ImageArray, roi: Roi, size: int = INPUT_SIZE) -> FloatArray:
    """The ROI resampled (bilinear, black outside the image) to size×size, values in [0, 1]."""
    coeffs = roi.affine(size).ravel().tolist()
    patch = Image.fromarray(image).transform(
        (size, size),
        Image.Transform.AFFINE,
        data=tuple(coeffs),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )
    return (np.asarray(patch, dtype=np.float32) / np.float32(255.0)).astype(np.float32)


def to_image(raw: FloatArray, roi: Roi, size: int = INPUT_SIZE) -> FloatArray:
    """Model output (468×3 in crop pixels) mapped to image pixels; z scaled like x."""
    matrix = roi.affine(size)
    xy = raw[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    z = raw[:, 2:3] * np.float32(roi.size / size)
    return np.concatenate([xy, z], axis=1).astype(np.float32)


def _unit(vector: FloatArray) -> FloatArray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


def head_pose(points: FloatArray) -> tuple[float, float, float]:
    """Head ``(yaw, pitch, roll)`` in degrees, from the face's own axes in the mesh.

    The x axis runs from the right-eye outer corner (33) to the left-eye outer corner (263),
    the y axis from forehead (10) to chin (152), made orthogonal to x. Signs, for an unmirrored
    image: ``yaw`` > 0 when the subject turns to their left (the face points to the image's
    right); ``pitch`` > 0 when the subject looks up; ``roll`` > 0 when the head tilts clockwise
    on screen (the subject's left eye, on the image's right, is lower). A mirror image flips
    the signs of yaw and roll. Rough (a few degrees), meant for liveness prompts, not metrology.
    """
    x_axis = _unit(points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER])
    down = points[CHIN] - points[FOREHEAD]
    y_axis = _unit(down - float(down @ x_axis) * x_axis)
    yaw = math.degrees(math.asin(float(np.clip(x_axis[2], -1.0, 1.0))))
    pitch = math.degrees(math.asin(float(np.clip(-y_axis[2], -1.0, 1.0))))
    roll = math.degrees(math.atan2(float(x_axis[1]), float(x_axis[0])))
    return yaw, pitch, roll


def _eye_ratio(points: FloatArray, top: int, bottom: int, corner_a: int, corner_b: int) -> float:
    width = float(np.linalg.norm(points[corner_a] - points[corner_b]))
    height = float(np.linalg.norm(points[top] - points[bottom]))
    return height / width if width > 0 else 0.0


def eye_aspect_ratio(points: FloatArray) -> tuple[float, float]:
    """Eye openness ``(left, right)`` of the subject's own eyes: lid gap over eye width (3-D).

    The subject's left eye is on the image's right in an unmirrored photo. Open eyes give
    roughly 0.25–0.4, closed ones under ~0.1.
    """
    left = _eye_ratio(points, LEFT_EYE_TOP, LEFT_EYE_BOTTOM, LEFT_EYE_INNER, LEFT_EYE_OUTER)
    right = _eye_ratio(points, RIGHT_EYE_TOP, RIGHT_EYE_BOTTOM, RIGHT_EYE_INNER, RIGHT_EYE_OUTER)
    return left, right


@dataclass(frozen=True, eq=False)
class MeshResult:
    """Face Mesh output: 468×3 float32 points (x, y in image pixels, z relative, same scale as
    x, smaller = nearer) and ``presence``, the model's probability that a face is in the ROI."""

    points: FloatArray
    presence: float
    roi: Roi

    def head_pose(self) -> tuple[float, float, float]:
        """``(yaw, pitch, roll)`` in degrees; see :func:`head_pose`."""
        return head_pose(self.points)

    def eye_aspect_ratio(self) -> tuple[float, float]:
        """``(left, right)`` eye openness; see :func:`eye_aspect_ratio`."""
        return eye_aspect_ratio(self.points)

    @property
    def box(self) -> Box:
        """The box around all landmarks, in image pixels."""
        low, high = self.points[:, :2].min(axis=0), self.points[:, :2].max(axis=0)
        return Box(float(low[0]), float(low[1]), float(high[0]), float(high[1]))


class FaceMesh:
    """MediaPipe Face Mesh landmarker. Each instance owns its LiteRT interpreter, loaded on the
    first call; use one instance per thread."""

    def __init__(self) -> None:
        self._model = LiteModel(MODEL_FILE)

    def landmarks(
        self, image: ImageArray, box: Box, keypoints: FloatArray | None = None
    ) -> MeshResult:
        """Landmarks of the face in ``box``; pass the detection's keypoints to level the eyes."""
        return self.landmarks_in(image, face_roi(box, keypoints))

    def landmarks_in(self, image: ImageArray, roi: Roi) -> MeshResult:
        """Landmarks of the face filling ``roi`` (as made by :func:`face_roi`)."""
        outputs = self._model.run(crop(image, roi)[np.newaxis])
        raw_points, raw_flag = sorted(outputs, key=lambda out: -out.size)
        points = to_image(raw_points.reshape(NUM_LANDMARKS, 3), roi)
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(raw_flag.ravel()[0], -100.0, 100.0))))
        return MeshResult(points, presence, roi)
