"""Face quality: size, sharpness, exposure and a coarse head pose from the 5 landmarks.

The measures are cheap and explainable; :class:`QualityPolicy` turns them into the reasons an
enrolment is refused ("face too small", "image blurred", ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facekey.vision.landmarks import eye_centers
from facekey.vision.occlusion import MASK_MODEL
from facekey.vision.types import FloatArray, ImageArray

# Coarse pose from the 5 points, fitted against the 468-point mesh's head pose on 400 LFW
# images: yaw follows the nose's offset along the eye line (degrees per inter-ocular distance,
# correlation 0.92); pitch follows how far the nose base lies below the eye line, which is
# 0.755 inter-ocular distances on the median (frontal) LFW face (correlation 0.60).
_YAW_PER_OFFSET = 97.0
_PITCH_PER_DROP = 57.0
_FRONTAL_NOSE_DROP = 0.755


@dataclass(frozen=True)
class Quality:
    """Measured properties of one face."""

    eye_distance_px: float
    sharpness: float
    brightness: float
    clipped_fraction: float
    yaw_deg: float
    pitch_deg: float
    #: Probability that the face wears a mask (:mod:`facekey.vision.occlusion`).
    mask_probability: float = 0.0

    @property
    def masked(self) -> bool:
        """Whether the face counts as masked (its comparisons read the masked tables)."""
        return self.mask_probability >= MASK_MODEL.threshold

    @property
    def score(self) -> float:
        """A summary in [0, 1]: 1 for a large, sharp, well-exposed frontal face."""
        size = min(1.0, self.eye_distance_px / 60.0)
        sharp = min(1.0, self.sharpness / 100.0)
        exposure = 1.0 - min(1.0, abs(self.brightness - 0.5) * 2.0) * 0.5 - self.clipped_fraction
        pose = max(0.0, 1.0 - (abs(self.yaw_deg) + abs(self.pitch_deg)) / 90.0)
        return float(np.clip(size * sharp * max(0.0, exposure) * pose, 0.0, 1.0) ** 0.25)


@dataclass(frozen=True)
class QualityPolicy:
    """Limits below which a face is not good enough (defaults suit enrolment)."""

    min_eye_distance_px: float = 24.0
    min_sharpness: float = 8.0
    min_brightness: float = 0.12
    max_brightness: float = 0.92
    max_clipped_fraction: float = 0.25
    max_yaw_deg: float = 35.0
    max_pitch_deg: float = 30.0
    #: Enrolment refuses masked faces: every gallery template is of an unmasked face, so a
    #: comparison's condition is the probe's (unmasked, or masked against unmasked).
    allow_masks: bool = False

    def problems(self, quality: Quality) -> list[str]:
        """Why ``quality`` falls short; empty when the face is good enough."""
        checks = [
            (quality.eye_distance_px < self.min_eye_distance_px, "face too small"),
            (quality.sharpness < self.min_sharpness, "image blurred"),
            (quality.brightness < self.min_brightness, "image too dark"),
            (quality.brightness > self.max_brightness, "image too bright"),
            (quality.clipped_fraction > self.max_clipped_fraction, "face over- or under-exposed"),
            (abs(quality.yaw_deg) > self.max_yaw_deg, "head turned sideways"),
            (abs(quality.pitch_deg) > self.max_pitch_deg, "head tilted up or down"),
            (quality.masked and not self.allow_masks, "face covered by a mask"),
        ]
        return [reason for failed, reason in checks if failed]


def measure_quality(
    landmarks: FloatArray, chip: ImageArray, mask_probability: float = 0.0
) -> Quality:
    """Quality of one face from its 5 landmarks (image pixels) and its aligned chip."""
    left, right = eye_centers(landmarks)
    eye_distance = float(np.linalg.norm(right - left))
    grey = chip.astype(np.float32).mean(axis=2)
    inner = _central(grey)
    yaw, pitch = _pose(left, right, landmarks[4], eye_distance)
    return Quality(
        eye_distance_px=eye_distance,
        sharpness=_laplacian_variance(inner),
        brightness=float(inner.mean() / 255.0),
        clipped_fraction=float(np.mean((inner <= 5) | (inner >= 250))),
        yaw_deg=yaw,
        pitch_deg=pitch,
        mask_probability=mask_probability,
    )


def _central(grey: FloatArray) -> FloatArray:
    """The middle half of the chip: the face without background."""
    h, w = grey.shape
    return grey[h // 4 : h - h // 4, w // 4 : w - w // 4]


def _laplacian_variance(grey: FloatArray) -> float:
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def _pose(
    left: FloatArray, right: FloatArray, nose: FloatArray, eye_distance: float
) -> tuple[float, float]:
    """Coarse yaw and pitch in degrees; positive yaw: the nose points to the image's right."""
    if eye_distance <= 0:
        return 0.0, 0.0
    axis = (right - left) / eye_distance
    normal = np.array([-axis[1], axis[0]])
    offset = nose - (left + right) / 2.0
    across = float(np.dot(offset, axis)) / eye_distance
    drop = float(np.dot(offset, normal)) / eye_distance
    yaw = float(np.clip(_YAW_PER_OFFSET * across, -90.0, 90.0))
    pitch = float(np.clip(_PITCH_PER_DROP * (_FRONTAL_NOSE_DROP - drop), -90.0, 90.0))
    return yaw, pitch
