"""Synthetic face masks drawn on real faces, for calibrating masked comparisons.

Real masked faces are scarce (MFR2 holds a few hundred), far too few to measure the false-match
rates of one in a million that checkout needs. Like the MaskTheFace tool that made MFR2's
synthetic sibling, this draws a mask over the lower face of an unmasked photo: a polygon laid
out on the recognition template (from the bridge of the nose over the cheeks to below the
chin), mapped into the image by the face's own alignment, filled with one of the common mask
looks (surgical blue or white with pleats, black or grey cloth, patterned cloth, white
respirator) and shaded from top to bottom. Tables built from such faces are checked against
real masked pairs (``facekey eval pairs`` on MFR2) before they are trusted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from facekey.vision.align import canonical_points, similarity_transform
from facekey.vision.types import Detection, FloatArray, ImageArray

# The mask's outline in the canonical 128×128 face frame (eyes at y≈59, nose tip y≈82,
# mouth y≈105): across the bridge of the nose, down the cheeks, under the chin.
_OUTLINE: Final = np.array(
    [
        [14, 76],
        [36, 68],
        [64, 63],
        [92, 68],
        [114, 76],
        [122, 100],
        [112, 128],
        [88, 148],
        [64, 154],
        [40, 148],
        [16, 128],
        [6, 100],
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class MaskStyle:
    """How a mask looks: base colour (RGB), pleats, and a pattern of a second colour."""

    name: str
    colour: tuple[int, int, int]
    pleats: bool = False
    pattern: tuple[int, int, int] | None = None


STYLES: Final = (
    MaskStyle("surgical_blue", (128, 176, 212), pleats=True),
    MaskStyle("surgical_white", (232, 234, 236), pleats=True),
    MaskStyle("cloth_black", (34, 34, 38)),
    MaskStyle("cloth_grey", (128, 128, 134)),
    MaskStyle("cloth_navy", (40, 52, 88)),
    MaskStyle("cloth_patterned", (170, 40, 50), pattern=(240, 230, 220)),
    MaskStyle("respirator_white", (226, 224, 216)),
)


def style_for(key: str) -> MaskStyle:
    """A style chosen deterministically from ``key`` (e.g. the image's file name)."""
    digest = hashlib.sha256(key.encode()).digest()
    return STYLES[digest[0] % len(STYLES)]


def draw_mask(
    image: ImageArray, landmarks: FloatArray, detection: Detection | None, style: MaskStyle
) -> ImageArray:
    """A copy of ``image`` with a mask of ``style`` over the face given by its points."""
    source, target = canonical_points(landmarks, detection)
    to_image = _inverse(similarity_transform(source, target))
    outline = _OUTLINE @ to_image[:, :2].T + to_image[:, 2]
    height, width = image.shape[:2]
    shape = Image.new("L", (width, height), 0)
    ImageDraw.Draw(shape).polygon([tuple(p) for p in outline.tolist()], fill=255)
    alpha = np.asarray(shape.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32) / 255.0
    fabric = _fabric(style, outline, width, height)
    blended = image.astype(np.float32) * (1 - alpha[..., None]) + fabric * alpha[..., None]
    masked: ImageArray = np.clip(blended, 0, 255).astype(np.uint8)
    return masked


def _inverse(matrix: FloatArray) -> FloatArray:
    full = np.vstack([matrix.astype(np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2].astype(np.float32)


def _fabric(style: MaskStyle, outline: FloatArray, width: int, height: int) -> FloatArray:
    """The mask's colour at every pixel: base colour, shading, pleats or a pattern."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    top, bottom = float(outline[:, 1].min()), float(outline[:, 1].max())
    depth = np.clip((ys - top) / max(bottom - top, 1.0), 0.0, 1.0)
    shade = 1.05 - 0.25 * depth  # lit from above, darker under the chin
    fabric = np.empty((height, width, 3), dtype=np.float32)
    fabric[:] = style.colour
    span = max(bottom - top, 1.0)
    if style.pleats:
        pleat = np.abs(np.sin((ys - top) / span * np.pi * 3.0)) ** 8
        shade = shade - 0.18 * pleat
    if style.pattern is not None:
        dots = (np.sin(xs / span * 40.0) * np.sin(ys / span * 40.0)) > 0.6
        fabric[dots] = style.pattern
    shaded: FloatArray = (fabric * shade[..., None]).astype(np.float32)
    return shaded
