"""Face chips: the aligned crops that engines embed."""

from __future__ import annotations

from typing import Final

import dlib
import numpy as np
from PIL import Image

from facekey.vision.landmarks import eye_centers
from facekey.vision.types import Detection, FloatArray, ImageArray


def dlib_chip(image: ImageArray, landmarks: FloatArray, size: int, padding: float) -> ImageArray:
    """dlib's own face chip (``dlib.get_face_chip``) from its 5 landmark points."""
    xs, ys = landmarks[:, 0], landmarks[:, 1]
    rect = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    points = [dlib.point(round(float(x)), round(float(y))) for x, y in landmarks]
    shape = dlib.full_object_detection(rect, points)
    chip = dlib.get_face_chip(image, shape, size=size, padding=padding)
    return np.ascontiguousarray(chip, dtype=np.uint8)


def similarity_chip(
    image: ImageArray, source: FloatArray, target: FloatArray, size: int
) -> ImageArray:
    """Warp ``image`` so ``source`` points land on ``target`` points (a similarity transform)."""
    matrix = similarity_transform(source, target)
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    warped = Image.fromarray(image).transform(
        (size, size),
        Image.Transform.AFFINE,
        tuple(float(v) for v in inverse.ravel()),
        resample=Image.Resampling.BILINEAR,
    )
    return np.ascontiguousarray(np.asarray(warped, dtype=np.uint8))


def similarity_transform(source: FloatArray, target: FloatArray) -> FloatArray:
    """2×3 least-squares similarity transform mapping ``source`` onto ``target`` (Umeyama)."""
    src = source.astype(np.float64)
    dst = target.astype(np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = float((s * sign).sum() / src_c.var(axis=0).sum())
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]]).astype(np.float32)


# A canonical 128×128 face frame: Open Model Zoo's face-recognition template (image-left eye,
# image-right eye, nose tip), with the mouth centre halfway between its mouth corners and
# dlib's nose-base point where it falls on the frame (its mean position after alignment on
# LFW View 1 DevTrain). face-reid-0095 embeds this frame; mask and occlusion checks read it.
CANONICAL_SIZE: Final = 128
_EYES: Final = np.array([[40.393, 59.081], [87.376, 58.859]], dtype=np.float32)
_NOSE_TIP: Final = np.array([[64.034, 81.985]], dtype=np.float32)
_MOUTH_CENTRE: Final = np.array([[64.186, 105.468]], dtype=np.float32)
_NOSE_BASE: Final = np.array([[64.010, 91.000]], dtype=np.float32)
BLAZEFACE_FRAME: Final = np.vstack([_EYES, _NOSE_TIP, _MOUTH_CENTRE])
DLIB_FRAME: Final = np.vstack([_EYES, _NOSE_BASE])


def canonical_points(
    landmarks: FloatArray, detection: Detection | None
) -> tuple[FloatArray, FloatArray]:
    """(points in the image, where they go in the canonical frame).

    BlazeFace's keypoints (both eyes, nose tip, mouth centre) when the face was found by
    BlazeFace, since they hold their place under a mask; else dlib's five points (eye
    centres and the base of the nose).
    """
    keypoints = None if detection is None else detection.keypoints
    if keypoints is not None and len(keypoints) >= 4:
        first, second = keypoints[0], keypoints[1]
        eyes = (first, second) if first[0] <= second[0] else (second, first)
        return np.vstack([*eyes, keypoints[2], keypoints[3]]), BLAZEFACE_FRAME
    return np.vstack([*eye_centers(landmarks), landmarks[4]]), DLIB_FRAME


def canonical_chip(
    image: ImageArray, landmarks: FloatArray, detection: Detection | None
) -> ImageArray:
    """The face in the canonical 128×128 frame."""
    source, target = canonical_points(landmarks, detection)
    return similarity_chip(image, source, target, CANONICAL_SIZE)
