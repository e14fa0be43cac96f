"""Photometric cues of screens and prints beyond the CNN pair, measured on one frame or a burst.

Each cue is one number; which of them the fusion uses is decided by leave-one-source-out
evaluation on the development sources (``docs/liveness.md`` lists every cue tried, kept or not):

* :func:`edge_score`: a straight edge (a phone's or a sheet's border) beside the face in the
  4× context crop: the strongest consistent-polarity line, over a few tilts, on each side;
* :func:`spectral_peak`: moiré and other periodic patterns: the highest peak of the face's
  whitened spectrum at mid/high frequencies, over its median;
* :func:`specular_share`: share of near-white, unsaturated pixels on the face (screen glare);
* :func:`chroma_spread`: spread of the face's chroma (screens and prints compress the gamut);
* :func:`flicker`: temporal high-frequency change of the face's brightness over a burst, over
  that of the background (a screen's refresh beats with the camera's exposure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from facekey.liveness.passive import crop_box, resize_bilinear
from facekey.vision.types import Box, ImageArray

Grey = npt.NDArray[np.float32]

#: Side of the resampled 4× context crop for the edge search.
EDGE_CROP: Final = 96
#: Context crop scale (the wider MiniFASNet crop).
CONTEXT_SCALE: Final = 4.0
#: Tilts (line slope, pixels per pixel) searched for a straight edge.
EDGE_SLOPES: Final = (-0.2, -0.1, 0.0, 0.1, 0.2)
#: Face box shrink for the spectral and colour cues (cheeks, nose, forehead).
INNER: Final = 0.7
#: Radial band of the spectrum searched for peaks (cycles per pixel).
SPECTRAL_BAND: Final = (0.12, 0.45)
SPECTRAL_SIZE: Final = 96


def grey_of(image: ImageArray) -> Grey:
    """Luma (BT.601) as float32."""
    rgb = image.astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def inner_box(box: Box, width: int, height: int, share: float = INNER) -> tuple[int, int, int, int]:
    """The central ``share`` of the box, inside the image: (left, top, right, bottom)."""
    cx, cy = box.center
    half_w, half_h = share * box.width / 2, share * box.height / 2
    left, top = max(0, int(cx - half_w)), max(0, int(cy - half_h))
    right, bottom = min(width, int(cx + half_w)), min(height, int(cy + half_h))
    return left, top, right, bottom


def edge_score(image: ImageArray, box: Box) -> float:
    """Strength of the two strongest straight edges around the face in the 4× context crop.

    Along a line beside the face (left, right, above, below), the signed gradient across it is
    averaged: a border keeps one polarity along its length, background texture cancels out.
    Normalised by the crop's mean gradient magnitude.
    """
    height, width = image.shape[:2]
    left, top, right, bottom = crop_box(box, CONTEXT_SCALE, width, height)
    patch = resize_bilinear(image[top : bottom + 1, left : right + 1], EDGE_CROP)
    grey = grey_of(patch.astype(np.uint8))
    gy, gx = np.gradient(grey)
    scale = float(np.mean(np.hypot(gx, gy))) + 1.0
    fx = (box.left - left) / (right - left + 1) * EDGE_CROP
    fx2 = (box.right - left) / (right - left + 1) * EDGE_CROP
    fy = (box.top - top) / (bottom - top + 1) * EDGE_CROP
    fy2 = (box.bottom - top) / (bottom - top + 1) * EDGE_CROP
    sides = [
        _line_strength(gx, fx, fx2, fy, fy2),
        _line_strength(gy.T, fy, fy2, fx, fx2),
    ]
    strengths = sorted((s for pair in sides for s in pair), reverse=True)
    return float(sum(strengths[:2]) / scale)


def _line_strength(
    across: Grey, low: float, high: float, span_low: float, span_high: float
) -> tuple[float, float]:
    """Strongest near-vertical line left of ``low`` and right of ``high`` (columns of ``across``,
    the gradient across the lines), averaged along the face's extent ``span_low..span_high``
    widened by half the face."""
    size = across.shape[1]
    margin = 0.5 * (span_high - span_low)
    rows = np.arange(max(0, int(span_low - margin)), min(across.shape[0], int(span_high + margin)))
    if rows.size < 4:
        return 0.0, 0.0
    centre = rows.mean()
    best_left = best_right = 0.0
    for slope in EDGE_SLOPES:
        shift = np.round(slope * (rows - centre)).astype(int)
        cols = np.arange(size)[None, :] + shift[:, None]
        valid = (cols >= 0) & (cols < size)
        values = np.where(valid, across[rows[:, None], np.clip(cols, 0, size - 1)], 0.0)
        profile = np.abs(values.sum(axis=0)) / np.maximum(valid.sum(axis=0), 1)
        gap = 0.15 * (high - low)
        left_cols, right_cols = profile[: max(0, int(low - gap))], profile[int(high + gap) + 1 :]
        best_left = max(best_left, float(left_cols.max()) if left_cols.size else 0.0)
        best_right = max(best_right, float(right_cols.max()) if right_cols.size else 0.0)
    return best_left, best_right


def spectral_peak(image: ImageArray, box: Box) -> float:
    """Highest whitened spectral peak (log ratio to the band's median) inside the face."""
    height, width = image.shape[:2]
    left, top, right, bottom = inner_box(box, width, height)
    if min(right - left, bottom - top) < 24:
        return 0.0
    patch = resize_bilinear(image[top:bottom, left:right], SPECTRAL_SIZE)
    grey = grey_of(patch.astype(np.uint8))
    window = np.outer(np.hanning(SPECTRAL_SIZE), np.hanning(SPECTRAL_SIZE)).astype(np.float32)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2((grey - grey.mean()) * window)))
    log = np.log(spectrum + 1e-3)
    freq = np.fft.fftshift(np.fft.fftfreq(SPECTRAL_SIZE))
    radius = np.hypot(freq[:, None], freq[None, :])
    rings = np.digitize(radius, np.linspace(0, 0.71, 36))
    ring_median = np.array(
        [np.median(log[rings == r]) if np.any(rings == r) else 0.0 for r in range(rings.max() + 1)]
    )
    whitened = log - ring_median[rings]
    band = (radius >= SPECTRAL_BAND[0]) & (radius <= SPECTRAL_BAND[1])
    return float(whitened[band].max() - np.median(whitened[band]))


def _inner_pixels(image: ImageArray, box: Box) -> npt.NDArray[np.float32]:
    height, width = image.shape[:2]
    left, top, right, bottom = inner_box(box, width, height)
    return image[top:bottom, left:right].reshape(-1, 3).astype(np.float32)


def specular_share(image: ImageArray, box: Box) -> float:
    """Share of the inner face's pixels that are near white and unsaturated (glare)."""
    pixels = _inner_pixels(image, box)
    if pixels.size == 0:
        return 0.0
    high, low = pixels.max(axis=1), pixels.min(axis=1)
    glare = (high >= 240) & (high - low <= 30)
    return float(np.mean(glare))


def chroma_spread(image: ImageArray, box: Box) -> float:
    """Spread (std of Cb and Cr, over the luma's mean) of the inner face's colours."""
    pixels = _inner_pixels(image, box)
    if pixels.size == 0:
        return 0.0
    r, g, b = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    cb, cr = b - luma, r - luma
    return float((np.std(cb) + np.std(cr)) / (np.mean(luma) + 1.0))


def flicker(images: Sequence[ImageArray], boxes: Sequence[Box]) -> float:
    """High-frequency change of the face's mean brightness over the burst (second differences,
    relative), minus that of the whole frame's: a screen's refresh beats with the exposure."""
    if len(images) < 3:
        return 0.0
    face, whole = [], []
    for image, box in zip(images, boxes, strict=True):
        pixels = _inner_pixels(image, box)
        face.append(float(pixels.mean()) if pixels.size else 0.0)
        whole.append(float(image[::4, ::4].mean()))
    return _roughness(face) - _roughness(whole)


def _roughness(values: Sequence[float]) -> float:
    series = np.asarray(values, dtype=np.float64)
    return float(np.mean(np.abs(np.diff(series, 2))) / (np.mean(series) + 1.0))
