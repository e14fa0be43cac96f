"""Is the face masked? A small, explainable detector on the canonical face frame.

A masked comparison needs its own calibration table (masked strangers score differently from
unmasked ones), so every face gets a mask probability. The face is cut into the canonical
128×128 frame (:func:`facekey.vision.align.canonical_chip`), where the mouth, the nose and the
cheeks always fall in the same boxes, and the lower face is compared with the skin around the
eyes and above them, which no mask covers:

- how far the lower face's colour (chroma) is from that skin, with and without a grey-world
  correction of the light, and what share of its pixels is unlike that skin;
- how much of it is skin-coloured at all, next to the upper face;
- how bright and how textured it is next to the upper face (a mask is smooth);
- whether the mouth shows a dark lip line and redder lips.

A logistic model of those features, fitted on MFR2's masked and unmasked faces and unmasked
LFW faces by ``benchmarks/fit_mask_detector.py``, gives the probability. Measured with each
MFR2 person left out in turn, at the shipped threshold: 3.5 % of masked faces missed (textured
cloth and respirators; the unmasked table then decides them, which is conservative for a
masked probe), no unmasked MFR2 face and 1.0 % of unmasked LFW faces flagged (side light,
shadows of caps, beards).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from facekey.vision.align import canonical_chip
from facekey.vision.types import Detection, FloatArray, ImageArray

_Grid = npt.NDArray[np.float32]
_Box = tuple[slice, slice]

# Boxes of the canonical frame (rows, columns): eyes at y≈59, nose tip y≈82, mouth y≈105.
_UPPER: Final[tuple[_Box, ...]] = (
    (slice(60, 68), slice(28, 50)),  # under the image-left eye
    (slice(60, 68), slice(78, 100)),  # under the image-right eye
    (slice(38, 50), slice(46, 82)),  # between and above the brows
)
_LOWER: Final[_Box] = (slice(92, 120), slice(40, 88))  # mouth and chin
_NOSE: Final[_Box] = (slice(74, 90), slice(50, 78))
_CHEEKS: Final[tuple[_Box, ...]] = ((slice(76, 96), slice(22, 40)), (slice(76, 96), slice(88, 106)))
_MOUTH: Final[_Box] = (slice(96, 116), slice(46, 82))
_EYE_BAND: Final[_Box] = (slice(40, 68), slice(30, 98))


@dataclass(frozen=True)
class MaskModel:
    """Standardisation and logistic weights over :func:`mask_features`."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.5

    def masked(self, features: FloatArray) -> bool:
        return self.probability(features) >= self.threshold

    def probability(self, features: FloatArray) -> float:
        z = (features - np.array(self.mean)) / np.array(self.scale)
        logit = float(z @ np.array(self.weights)) + self.bias
        return float(1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0))))


def mask_features(chip: ImageArray) -> FloatArray:
    """The detector's features of a face in the canonical frame (see the module docstring)."""
    luma, cb, cr = _ycbcr(chip)
    ref_b, ref_r, ref_y = (_pixels(a, _UPPER) for a in (cb, cr, luma))
    centre = np.array([np.median(ref_b), np.median(ref_r)])
    spread = np.maximum([np.std(ref_b), np.std(ref_r)], 2.0)
    features: list[float] = []
    for boxes in ((_LOWER,), (_NOSE,), _CHEEKS):
        b, r, y = (_pixels(a, boxes) for a in (cb, cr, luma))
        distance = np.hypot((b - centre[0]) / spread[0], (r - centre[1]) / spread[1])
        features += [
            float(np.log1p(np.hypot(np.median(b) - centre[0], np.median(r) - centre[1]))),
            float(np.mean(distance > 3.0)),
            float(np.mean(_skin(b, r)) - np.mean(_skin(ref_b, ref_r))),
            float(np.median(y) / max(float(np.median(ref_y)), 1.0)),
        ]
    gradient = np.abs(np.diff(luma, axis=0))[:, :-1] + np.abs(np.diff(luma, axis=1))[:-1, :]
    # Floors keep a flat (blank) chip finite; real faces are far above them.
    lower, upper = (max(float(gradient[box].mean()), 1e-3) for box in (_LOWER, _EYE_BAND))
    features.append(float(np.log(lower / upper)))
    mouth_luma, mouth_cr = luma[_MOUTH], cr[_MOUTH]
    features.append(
        float(
            (np.median(mouth_luma) - mouth_luma.mean(axis=1).min()) / max(np.median(mouth_luma), 1)
        )
    )
    features.append(float(np.percentile(mouth_cr, 90) - np.median(mouth_cr)))
    features.append(float(np.mean(_skin(cb[_LOWER].ravel(), cr[_LOWER].ravel()))))
    features.append(_grey_world_distance(chip))
    return np.array(features, dtype=np.float32)


def mask_probability(
    image: ImageArray,
    landmarks: FloatArray,
    detection: Detection | None,
    model: MaskModel | None = None,
) -> float:
    """Probability that the face given by its points wears a mask."""
    chip = canonical_chip(image, landmarks, detection)
    return (model or MASK_MODEL).probability(mask_features(chip))


def _ycbcr(chip: ImageArray) -> tuple[_Grid, _Grid, _Grid]:
    rgb = chip.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return luma, cb, cr


def _pixels(grid: _Grid, boxes: tuple[_Box, ...]) -> _Grid:
    return np.concatenate([grid[box].ravel() for box in boxes])


def _skin(cb: _Grid, cr: _Grid) -> npt.NDArray[np.bool_]:
    """The classic skin chroma box (Chai and Ngan 1999)."""
    return (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)


def _grey_world_distance(chip: ImageArray) -> float:
    """Chroma distance of the lower face from the upper face after a grey-world correction."""
    rgb = chip.astype(np.float32)
    means = rgb.reshape(-1, 3).mean(axis=0)
    balanced = np.clip(rgb * (means.mean() / np.maximum(means, 1.0)), 0, 255).astype(np.uint8)
    _, cb, cr = _ycbcr(balanced)
    lower = np.array([np.median(cb[_LOWER]), np.median(cr[_LOWER])])
    upper = np.array([np.median(_pixels(cb, _UPPER)), np.median(_pixels(cr, _UPPER))])
    return float(np.log1p(np.hypot(*(lower - upper))))


#: Fitted by ``benchmarks/fit_mask_detector.py ../shared/data`` (2026-12-01).
MASK_MODEL: Final = MaskModel(
    mean=(
        1.783707,
        0.19415,
        -0.050996,
        0.906518,
        1.760922,
        0.116328,
        -0.024571,
        0.998316,
        1.745372,
        0.243685,
        -0.09239,
        0.984344,
        -0.124036,
        0.308815,
        6.55632,
        0.906576,
        1.816822,
    ),
    scale=(
        0.661865,
        0.229797,
        0.200446,
        0.324165,
        0.619287,
        0.218332,
        0.190808,
        0.379836,
        0.701871,
        0.216402,
        0.190816,
        0.378486,
        0.303937,
        0.203393,
        4.346594,
        0.220173,
        0.670971,
    ),
    weights=(
        0.09529,
        -0.276321,
        -1.229301,
        -0.611619,
        0.587343,
        0.733347,
        -1.035966,
        1.204163,
        1.342563,
        -0.860244,
        -0.551233,
        -1.594844,
        -0.346058,
        -2.444183,
        -0.364498,
        0.931502,
        2.379945,
    ),
    bias=-7.278163,
    threshold=0.5,
)
