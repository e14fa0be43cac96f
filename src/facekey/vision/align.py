"""Face chips: the aligned crops that engines embed."""

from __future__ import annotations

import dlib
import numpy as np
from PIL import Image

from facekey.vision.types import FloatArray, ImageArray


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
