"""Synthetic radiometric frames registered to real RGB faces, for the screening tests.

Each face is laid out from BlazeFace's eye keypoints (not from the Face Mesh the screener
reads): skin over an ellipse of the face box, the eye band between and around the inner eye
corners hottest (the canthi) at the temperature asked, the background at room temperature. A
camera that reads ``bias_c`` low is simulated by subtracting it; the kiosk's calibration
offset gives it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from facekey.edge.thermal import centi_kelvin
from facekey.vision.blazeface import BlazeFaceDetector
from facekey.vision.types import Detection

ROOM_C = 22.0
SKIN_C = 34.5
FOREHEAD_C = 35.0
HAND_C = 33.0
MASK_C = 34.8


@dataclass(frozen=True)
class Face:
    """Where a face is: its box and eye keypoints."""

    detection: Detection

    @property
    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        keypoints = self.detection.keypoints
        assert keypoints is not None
        return keypoints[0], keypoints[1]

    @property
    def eye_distance(self) -> float:
        right, left = self.eyes
        return float(np.hypot(*(left - right)))


def faces_of(image: np.ndarray) -> list[Face]:
    return [Face(d) for d in BlazeFaceDetector("short").detect(image)]


def _grid(shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    return xs.astype(np.float64), ys.astype(np.float64)


def _ellipse(shape: Sequence[int], cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    xs, ys = _grid(shape)
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0


def _eye_band(shape: Sequence[int], face: Face) -> np.ndarray:
    right, left = face.eyes
    mid = (right + left) / 2
    d = face.eye_distance
    return _ellipse(shape, float(mid[0]), float(mid[1]), 0.45 * d, 0.18 * d)


def _hand(shape: Sequence[int], face: Face) -> np.ndarray:
    """A hand over the eyes: a wide band from above the brows to the nose."""
    right, left = face.eyes
    mid = (right + left) / 2
    d = face.eye_distance
    return _ellipse(shape, float(mid[0]), float(mid[1] + 0.1 * d), 1.1 * d, 0.45 * d)


def _mask(shape: Sequence[int], face: Face) -> np.ndarray:
    """A mask over nose and mouth: the lower half of the face below the eyes."""
    _, ys = _grid(shape)
    right, left = face.eyes
    below = ys > (right[1] + left[1]) / 2 + 0.45 * face.eye_distance
    return below & _face_area(shape, face)


def _face_area(shape: Sequence[int], face: Face) -> np.ndarray:
    box = face.detection.box
    cx, cy = box.center
    return _ellipse(shape, cx, cy, 0.5 * box.width, 0.62 * box.height)


def scene(
    image: np.ndarray,
    temperatures: Sequence[float | None],
    *,
    bias_c: float = 0.0,
    hand: bool = False,
    mask: bool = False,
    skin_c: float = SKIN_C,
) -> np.ndarray:
    """A uint16 centi-kelvin frame of ``image``'s size; one temperature per face found (None:
    that face is a photo, at room temperature)."""
    shape = image.shape[:2]
    celsius = np.full(shape, ROOM_C)
    for face, temperature in zip(faces_of(image), temperatures, strict=False):
        if temperature is None:
            continue
        celsius[_face_area(shape, face)] = skin_c
        _, ys = _grid(shape)
        forehead = _face_area(shape, face) & (ys < face.eyes[0][1] - 0.3 * face.eye_distance)
        celsius[forehead] = skin_c + FOREHEAD_C - SKIN_C
        celsius[_eye_band(shape, face)] = temperature
        if mask:
            celsius[_mask(shape, face)] = MASK_C
        if hand:
            celsius[_hand(shape, face)] = HAND_C
    return centi_kelvin(celsius - bias_c)


def draw_hand(image: np.ndarray) -> np.ndarray:
    """``image`` with a skin-coloured hand drawn over the eyes."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    for face in faces_of(image):
        right, left = face.eyes
        mid, d = (right + left) / 2, face.eye_distance
        cx, cy = float(mid[0]), float(mid[1] + 0.1 * d)
        draw.ellipse(
            (cx - 1.1 * d, cy - 0.45 * d, cx + 1.1 * d, cy + 0.45 * d), fill=(224, 172, 140)
        )
    return np.asarray(picture)


def side_by_side(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two pictures in one frame (two people in front of the kiosk)."""
    height = min(first.shape[0], second.shape[0])
    return np.ascontiguousarray(np.hstack([first[:height], second[:height]]))
