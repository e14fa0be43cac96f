"""Photometric planarity: does one homography map one frame's face onto another, pixel for pixel?

A photo or a screen moved, scaled, rotated or **tilted** in front of the camera is a plane: the
image of its face region in one frame is the image in another frame warped by one homography.
The Face Mesh still fits a 3-D face to a tilted photo (its yaw or pitch can change by 15° or more),
and the landmark homography residual of :mod:`facekey.liveness.temporal` can stay large enough
for such a photo to pass for a head turn. A real head that turns shows parallax instead: the
nose moves against the cheeks, one side of the face is foreshortened and the other grows, and
the face's outline uncovers or hides background.

:func:`photometric_evidence` picks the pair of frames with the largest pose change; when that
change reaches :data:`MIN_POSE_CHANGE` degrees it fits a homography to the mesh landmarks of the
pair (:func:`~facekey.liveness.temporal.fit_homography`), refines it on the pixels with a few
Gauss–Newton steps (the mesh fits a 3-D face to a tilted photo, so the landmarks alone give a
biased plane), and measures the **agreement**: the normalised cross-correlation of the smoothed
grey levels of the first frame and of the second warped onto it, inside the first frame's
landmark hull shrunk by :data:`HULL_SHRINK` (the borders are left out). A plane, however
tilted, gives an agreement near 1; a turning head much less. The face is resampled so that
its eye-corner distance is :data:`EYE_PIXELS` pixels (independent of the camera's resolution).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

from facekey.liveness.temporal import FrameObservation, face_size, fit_homography
from facekey.vision.mesh import head_pose
from facekey.vision.types import FloatArray, ImageArray

#: Pose change (degrees of yaw or pitch between two frames) from which the measure is taken:
#: the smallest change that completes a challenge (a look-up, 12°).
MIN_POSE_CHANGE: Final = 12.0
#: Agreement at or above which the face region moved as one plane. Development data
#: (``docs/liveness.md``): real head movements of ≥ 12° reach at most 0.914.
PLANAR_AGREEMENT: Final = 0.96
#: The face is resampled so that the outer eye corners are this many pixels apart.
EYE_PIXELS: Final = 64.0
#: The landmark hull is shrunk towards its centre by this factor (borders left out).
HULL_SHRINK: Final = 0.85
#: Gaussian blur radius (resampled pixels) before correlating.
BLUR_RADIUS: Final = 1.5
#: Gauss–Newton steps refining the landmark homography on the pixels.
REFINE_STEPS: Final = 15
#: Levenberg–Marquardt damping of each step.
DAMPING: Final = 1e-3
#: Fewest face pixels to measure on.
MIN_PIXELS: Final = 200

Grey = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PhotometricEvidence:
    """The pair measured (frame indices, from 0), its pose change (degrees) and agreement."""

    first: int
    second: int
    pose_change: float
    agreement: float

    @property
    def planar(self) -> bool:
        """Whether the face region moved as one plane (a photo or a screen)."""
        return self.agreement >= PLANAR_AGREEMENT


def grey(image: ImageArray, blur: float) -> Grey:
    """The image's grey levels, blurred (Gaussian, radius ``blur`` pixels), as floats."""
    smooth = Image.fromarray(image).convert("L").filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(smooth, dtype=np.float64)


def most_turned_pair(points: Sequence[FloatArray]) -> tuple[int, int, float]:
    """``(i, j, change)``: the two frames whose yaw or pitch differ most, and by how much."""
    poses = [head_pose(p)[:2] for p in points]
    best = (0, 0, 0.0)
    for i, j in itertools.combinations(range(len(poses)), 2):
        change = max(abs(poses[i][0] - poses[j][0]), abs(poses[i][1] - poses[j][1]))
        if change > best[2]:
            best = (i, j, change)
    return best


def sample(image: Grey, matrix: FloatArray, grid: Grey) -> tuple[Grey, npt.NDArray[np.bool_]]:
    """``image`` at ``matrix`` × ``grid`` (3×N homogeneous points), bilinear; and which of the
    points fall inside the image."""
    mapped = matrix @ grid
    x, y = mapped[0] / mapped[2], mapped[1] / mapped[2]
    height, width = image.shape
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    x, y = np.clip(x, 0, width - 1.001), np.clip(y, 0, height - 1.001)
    x0, y0 = x.astype(int), y.astype(int)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy, inside


def face_frame(points: FloatArray) -> tuple[FloatArray, tuple[int, int]]:
    """The 3×3 map from resampled face pixels to image pixels, and the resampled size."""
    scale = face_size(points) / EYE_PIXELS
    low, high = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    width, height = (np.ceil((high - low) / scale) + 1).astype(int)
    matrix = np.array([[scale, 0.0, low[0]], [0.0, scale, low[1]], [0.0, 0.0, 1.0]])
    return matrix, (int(width), int(height))


def face_grid(points: FloatArray, to_face: FloatArray, size: tuple[int, int]) -> Grey:
    """Face pixels inside the landmarks' hull shrunk by :data:`HULL_SHRINK` (3×N, homogeneous)."""
    local = (points[:, :2] - to_face[:2, 2]) / to_face[0, 0]
    hull = convex_hull(local)
    centre = hull.mean(axis=0)
    shrunk = centre + HULL_SHRINK * (hull - centre)
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon([(float(x), float(y)) for x, y in shrunk], fill=1)
    rows, cols = np.nonzero(np.asarray(mask, dtype=bool))
    return np.vstack([cols, rows, np.ones(len(rows))]).astype(np.float64)


def convex_hull(points: FloatArray) -> FloatArray:
    """Convex hull (counter-clockwise vertices) of 2-D points: Andrew's monotone chain."""
    ordered = sorted({(float(x), float(y)) for x, y in points})
    if len(ordered) < 3:
        return np.array(ordered, dtype=np.float64)

    def chain(sequence: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in sequence:
            while len(out) >= 2 and _cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    return np.array(chain(ordered) + chain(ordered[::-1]), dtype=np.float64)


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def correlation(a: Grey, b: Grey) -> float:
    """Normalised cross-correlation of two equally long samples (0 when either is flat)."""
    x, y = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt(np.sum(x * x) * np.sum(y * y)))
    return float(np.sum(x * y) / denominator) if denominator > 1e-9 else 0.0


def planar_agreement(
    image_a: ImageArray, points_a: FloatArray, image_b: ImageArray, points_b: FloatArray
) -> float:
    """Agreement of frame A's face with frame B warped onto it by the best homography (the
    landmark homography refined on the pixels, :func:`align`)."""
    to_face, size = face_frame(points_a)
    blur = BLUR_RADIUS * face_size(points_a) / EYE_PIXELS
    grid = face_grid(points_a, to_face, size)
    if grid.shape[1] < MIN_PIXELS:
        return 0.0
    template, _ = sample(grey(image_a, blur), to_face, grid)
    start = fit_homography(points_a[:, :2], points_b[:, :2]) @ to_face
    return align(template, grey(image_b, blur), grid, start)


def align(template: Grey, image: Grey, grid: Grey, matrix: FloatArray) -> float:
    """Best agreement (:func:`correlation`) between ``template`` (values at the face pixels
    ``grid``) and ``image`` at ``matrix`` × ``grid``, over :data:`REFINE_STEPS` Gauss–Newton
    steps that refine the homography with a gain and an offset (Lucas–Kanade, forward
    additive, in face coordinates scaled to about ±1)."""
    normaliser = _normaliser(grid)
    points = normaliser @ grid
    warp_n = matrix @ np.linalg.inv(normaliser)
    warp_n = warp_n / warp_n[2, 2]
    gradients = [np.asarray(g, dtype=np.float64) for g in np.gradient(image)]
    best, gain, offset = -1.0, 1.0, 0.0
    for _ in range(REFINE_STEPS + 1):
        values, inside = sample(image, warp_n, points)
        if np.count_nonzero(inside) < MIN_PIXELS:
            break
        best = max(best, correlation(template[inside], values[inside]))
        step = _gauss_newton(template, values, gradients, warp_n, points, inside, gain, offset)
        warp_n = warp_n + np.append(step[:8], 0.0).reshape(3, 3)
        gain, offset = gain + step[8], offset + step[9]
    return best


def _normaliser(grid: Grey) -> FloatArray:
    """3×3 map from face pixels to coordinates centred on the grid, spread about ±1."""
    centre = grid[:2].mean(axis=1)
    scale = 1.0 / max(float(np.abs(grid[:2] - centre[:, None]).max()), 1.0)
    return np.array(
        [[scale, 0.0, -scale * centre[0]], [0.0, scale, -scale * centre[1]], [0.0, 0.0, 1.0]]
    )


def _gauss_newton(
    template: Grey,
    values: Grey,
    gradients: Sequence[Grey],
    warp_n: FloatArray,
    points: Grey,
    inside: npt.NDArray[np.bool_],
    gain: float,
    offset: float,
) -> Grey:
    """One damped Gauss–Newton step for (8 homography entries, gain, offset)."""
    mapped = warp_n @ points[:, inside]
    depth = mapped[2]
    x, y = mapped[0] / depth, mapped[1] / depth
    grad_y, _ = sample(gradients[0], warp_n, points[:, inside])
    grad_x, _ = sample(gradients[1], warp_n, points[:, inside])
    u, v = points[0, inside], points[1, inside]
    ones = np.ones_like(u)
    d_x = np.column_stack([u, v, ones, np.zeros((len(u), 3)), -u * x, -v * x]) / depth[:, None]
    d_y = np.column_stack([np.zeros((len(u), 3)), u, v, ones, -u * y, -v * y]) / depth[:, None]
    geometric = gain * (grad_x[:, None] * d_x + grad_y[:, None] * d_y)
    jacobian = np.column_stack([geometric, values[inside], ones])
    residual = gain * values[inside] + offset - template[inside]
    normal = jacobian.T @ jacobian
    normal += DAMPING * np.diag(np.diag(normal))
    return np.asarray(np.linalg.solve(normal, -jacobian.T @ residual), dtype=np.float64)


def photometric_evidence(
    images: Sequence[ImageArray],
    observations: Sequence[FrameObservation],
    relocate: Callable[[ImageArray], FrameObservation | None] | None = None,
) -> PhotometricEvidence | None:
    """The agreement of the most-turned pair of frames; None when the pose changed by less
    than :data:`MIN_POSE_CHANGE` degrees (nothing to measure). ``relocate``, when given,
    measures the pair's landmarks anew before the alignment."""
    first, second, change = most_turned_pair([o.points for o in observations])
    if change < MIN_POSE_CHANGE:
        return None
    pair = [observations[first], observations[second]]
    if relocate is not None:
        again = [relocate(images[first]), relocate(images[second])]
        pair = [new or old for new, old in zip(again, pair, strict=True)]
    agreement = planar_agreement(images[first], pair[0].points, images[second], pair[1].points)
    return PhotometricEvidence(first, second, round(change, 2), round(agreement, 4))
