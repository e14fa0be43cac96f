"""Thermal evidence: skin temperature of the face against its background.

The input is a radiometric thermal frame registered to the RGB frame (same field of view; a
different resolution is scaled), given as bytes: a 16-bit PNG in centi-kelvin or a ``.npy``
array in °C. Skin is measured where it is warmest and least covered: the forehead and the inner
eye corners (Face Mesh points), as the 90th percentile of small patches around them. The
background is the median of a ring around the face box. A live face is 30–38 °C and clearly
warmer than the background; paper and screens sit near ambient.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from PIL import Image

from facekey.errors import UnsupportedImage
from facekey.vision.types import Box, FloatArray

Vote = Literal["live", "spoof", "inconclusive"]

#: forehead (10, 151, 9) and inner eye corners (133 right, 362 left) in Face Mesh.
SKIN_POINTS: Final = (10, 151, 9, 133, 362)
SKIN_RANGE_C: Final = (30.0, 38.0)
MIN_CONTRAST_C: Final = 2.0
SPOOF_CONTRAST_C: Final = 1.0
PATCH_FRACTION: Final = 0.04
RING: Final = (1.3, 2.0)
KELVIN: Final = 273.15
_NPY_MAGIC = b"\x93NUMPY"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ThermalEvidence:
    """Skin and background temperature (°C), their difference, and the vote they give."""

    skin_c: float
    background_c: float
    contrast_c: float
    vote: Vote


def load_thermal(data: bytes) -> FloatArray:
    """A thermal frame in °C (H×W float32) from 16-bit PNG (centi-kelvin) or ``.npy`` (°C)."""
    if data.startswith(_NPY_MAGIC):
        array = np.load(io.BytesIO(data), allow_pickle=False)
        celsius = np.asarray(array, dtype=np.float32)
    elif data.startswith(_PNG_MAGIC):
        image = Image.open(io.BytesIO(data))
        if image.mode not in ("I;16", "I;16B", "I"):
            raise UnsupportedImage(f"a thermal PNG must be 16-bit greyscale, not {image.mode}")
        centi_kelvin = np.asarray(image, dtype=np.float32)
        celsius = (centi_kelvin / np.float32(100.0) - np.float32(KELVIN)).astype(np.float32)
    else:
        raise UnsupportedImage("a thermal frame must be a 16-bit PNG or a .npy array")
    if celsius.ndim != 2 or celsius.size == 0:
        raise UnsupportedImage(f"a thermal frame must be one 2-D channel, got {celsius.shape}")
    return celsius


def thermal_evidence(
    thermal: FloatArray, rgb_shape: Sequence[int], points: FloatArray, box: Box
) -> ThermalEvidence:
    """Skin vs background temperature of the face at ``points``/``box`` (RGB pixel coordinates)."""
    scale_y = thermal.shape[0] / rgb_shape[0]
    scale_x = thermal.shape[1] / rgb_shape[1]
    scaled = points[:, :2] * np.array([scale_x, scale_y], dtype=np.float32)
    face = Box(box.left * scale_x, box.top * scale_y, box.right * scale_x, box.bottom * scale_y)
    skin = _skin_temperature(thermal, scaled, face)
    background = background_temperature(thermal, face)
    return ThermalEvidence(skin, background, skin - background, _vote(skin, skin - background))


def _skin_temperature(thermal: FloatArray, points: FloatArray, face: Box) -> float:
    radius = max(1, round(PATCH_FRACTION * max(face.width, face.height)))
    values = [_patch(thermal, points[i], radius) for i in SKIN_POINTS]
    return float(np.percentile(np.concatenate(values), 90))


def _patch(thermal: FloatArray, point: FloatArray, radius: int) -> FloatArray:
    height, width = thermal.shape
    x = int(np.clip(round(float(point[0])), 0, width - 1))
    y = int(np.clip(round(float(point[1])), 0, height - 1))
    return thermal[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1].ravel()


def background_temperature(thermal: FloatArray, face: Box) -> float:
    """The median of a ring around the face box (1.3 to 2 half-sides out), in thermal pixels."""
    height, width = thermal.shape
    ys, xs = np.mgrid[0:height, 0:width]
    cx, cy = face.center
    half = max(face.width, face.height) / 2
    distance = np.maximum(np.abs(xs - cx), np.abs(ys - cy)) / max(half, 1.0)
    ring = (distance >= RING[0]) & (distance <= RING[1])
    if not ring.any():
        ring = distance > 1.0
    return float(np.median(thermal[ring])) if ring.any() else float(np.median(thermal))


def _vote(skin: float, contrast: float) -> Vote:
    low, high = SKIN_RANGE_C
    if low <= skin <= high and contrast >= MIN_CONTRAST_C:
        return "live"
    if contrast < SPOOF_CONTRAST_C or skin < low - 4.0:
        return "spoof"
    return "inconclusive"
