"""Temporal evidence over a passive burst (3–20 frames): motion, planarity, blinks.

Each frame contributes a :class:`FrameObservation`: the face box, the 468 Face Mesh points and
the passive live probability. :func:`burst_features` turns a burst into :class:`TemporalFeatures`:

* **motion**: median frame-to-frame RMS displacement of the landmarks, over the face size (the
  outer-eye-corner distance). A photo on a stand shows only the landmarker's own jitter.
* **nonplanarity**: a homography (DLT, least squares, Hartley-normalised) is fitted from the
  first frame's landmarks to each later frame's; the RMS residual over the face size measures how
  far the motion is from that of one plane. A hand-held photo or a screen moves as a plane (tiny
  residual, whatever the motion); a real head turning, nodding or changing expression does not.
  The 75th percentile over the frames is kept, so one bad landmark fit does not decide.
* **blink**: the eye aspect ratio dips below 65 % of the burst's median and recovers above 85 %.
* the passive scores' mean and minimum.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from facekey.vision.mesh import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, eye_aspect_ratio
from facekey.vision.types import Box, FloatArray

MIN_FRAMES: Final = 3
BLINK_DIP: Final = 0.65
BLINK_RECOVERY: Final = 0.85
NONPLANARITY_PERCENTILE: Final = 75.0


@dataclass(frozen=True, eq=False)
class FrameObservation:
    """One frame of a burst: face box, mesh points (468×3, image pixels), passive score (NaN
    when the passive pair did not score this frame)."""

    box: Box
    points: FloatArray
    passive: float


@dataclass(frozen=True)
class TemporalFeatures:
    """What a burst shows; see the module docstring for each measure."""

    frames: int
    passive_mean: float
    passive_min: float
    motion: float
    nonplanarity: float
    blink: bool
    ear_dip: float


def face_size(points: FloatArray) -> float:
    """Distance between the outer eye corners, in pixels (at least 1)."""
    return max(float(np.linalg.norm(points[LEFT_EYE_OUTER, :2] - points[RIGHT_EYE_OUTER, :2])), 1.0)


def fit_homography(source: FloatArray, target: FloatArray) -> FloatArray:
    """3×3 homography mapping ``source`` (N×2) to ``target`` (N×2), least squares (DLT)."""
    src_norm, src_t = _normalise(source)
    dst_norm, dst_t = _normalise(target)
    ones, zeros = np.ones(len(source)), np.zeros((len(source), 3))
    src_h = np.column_stack([src_norm, ones])
    rows_x = np.hstack([src_h, zeros, -dst_norm[:, :1] * src_h])
    rows_y = np.hstack([zeros, src_h, -dst_norm[:, 1:] * src_h])
    # only V is needed: the full U (2N×2N) would cost 40 ms for the 468 mesh points; with
    # fewer than 5 points (2N < 9 rows) the reduced V would lack the null vector
    rows = np.vstack([rows_x, rows_y])
    _, _, vt = np.linalg.svd(rows, full_matrices=rows.shape[0] < rows.shape[1])
    normalised = vt[-1].reshape(3, 3)
    return np.asarray(np.linalg.inv(dst_t) @ normalised @ src_t, dtype=np.float64)


def _normalise(points: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Points moved to zero mean and mean distance √2, and the 3×3 transform that did it."""
    data = points.astype(np.float64)
    centre = data.mean(axis=0)
    spread = float(np.mean(np.linalg.norm(data - centre, axis=1))) or 1.0
    scale = np.sqrt(2.0) / spread
    transform = np.array(
        [[scale, 0.0, -scale * centre[0]], [0.0, scale, -scale * centre[1]], [0.0, 0.0, 1.0]]
    )
    return (data - centre) * scale, transform


def homography_residual(source: FloatArray, target: FloatArray) -> float:
    """RMS distance (pixels) between ``target`` and ``source`` mapped by the best homography."""
    matrix = fit_homography(source, target)
    mapped = np.column_stack([source.astype(np.float64), np.ones(len(source))]) @ matrix.T
    projected = mapped[:, :2] / mapped[:, 2:3]
    return float(np.sqrt(np.mean(np.sum((projected - target) ** 2, axis=1))))


def motion(observations: Sequence[FrameObservation]) -> float:
    """Median frame-to-frame RMS landmark displacement over the face size."""
    steps = [
        _rms(b.points[:, :2] - a.points[:, :2]) / face_size(a.points)
        for a, b in itertools.pairwise(observations)
    ]
    return float(np.median(steps)) if steps else 0.0


def nonplanarity(observations: Sequence[FrameObservation]) -> float:
    """Upper-quartile homography residual (first frame to each other) over the face size."""
    first = observations[0].points[:, :2]
    size = face_size(observations[0].points)
    residuals = [homography_residual(first, o.points[:, :2]) / size for o in observations[1:]]
    return float(np.percentile(residuals, NONPLANARITY_PERCENTILE)) if residuals else 0.0


def blink(observations: Sequence[FrameObservation]) -> tuple[bool, float]:
    """``(blinked, dip)``: whether the eyes closed and reopened, and min over median openness."""
    ratios = np.array([float(np.mean(eye_aspect_ratio(o.points))) for o in observations])
    baseline = float(np.median(ratios))
    if baseline <= 0:
        return False, 1.0
    low = int(np.argmin(ratios))
    dipped = ratios[low] < BLINK_DIP * baseline
    opened_before = bool(np.any(ratios[:low] > BLINK_RECOVERY * baseline))
    opened_after = bool(np.any(ratios[low + 1 :] > BLINK_RECOVERY * baseline))
    return bool(dipped and opened_before and opened_after), float(ratios[low] / baseline)


def _rms(delta: FloatArray) -> float:
    return float(np.sqrt(np.mean(np.sum(delta.astype(np.float64) ** 2, axis=1))))


def burst_features(observations: Sequence[FrameObservation]) -> TemporalFeatures:
    """All temporal features of a burst (frames with a face, in capture order)."""
    if len(observations) < MIN_FRAMES:
        raise ValueError(f"a burst needs at least {MIN_FRAMES} frames with a face")
    scores = np.array([o.passive for o in observations], dtype=np.float64)
    scores = scores[~np.isnan(scores)]  # frames the passive pair did not score
    blinked, dip = blink(observations)
    return TemporalFeatures(
        frames=len(observations),
        passive_mean=float(scores.mean()) if scores.size else math.nan,
        passive_min=float(scores.min()) if scores.size else math.nan,
        motion=motion(observations),
        nonplanarity=nonplanarity(observations),
        blink=blinked,
        ear_dip=dip,
    )
