"""Thermal evidence on synthetic radiometric frames: a warm face vs paper at ambient."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facekey.errors import UnsupportedImage
from facekey.liveness.thermal import SKIN_POINTS, load_thermal, thermal_evidence
from facekey.vision.types import Box

RGB_SHAPE = (480, 640, 3)
BOX = Box(260, 160, 380, 320)


def _points() -> np.ndarray:
    points = np.zeros((468, 3), dtype=np.float32)
    points[:, 0], points[:, 1] = 320, 240
    for offset, index in enumerate(SKIN_POINTS):
        points[index, :2] = (290 + 15 * offset, 200 + 10 * (offset % 2))
    return points


def _frame(face_c: float, ambient_c: float = 22.0, scale: int = 1) -> np.ndarray:
    """A thermal frame (°C) at 1/scale of the RGB size, the face box at ``face_c``."""
    frame = np.full((480 // scale, 640 // scale), ambient_c, dtype=np.float32)
    frame += np.random.default_rng(0).normal(0, 0.2, frame.shape).astype(np.float32)
    left, top, right, bottom = (int(v) // scale for v in (BOX.left, BOX.top, BOX.right, BOX.bottom))
    frame[top:bottom, left:right] = face_c
    return frame


def _png_bytes(celsius: np.ndarray) -> bytes:
    centi_kelvin = np.round((celsius + 273.15) * 100).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(centi_kelvin).save(buffer, format="PNG")
    return buffer.getvalue()


def _npy_bytes(celsius: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, celsius)
    return buffer.getvalue()


@pytest.mark.parametrize("encode", [_png_bytes, _npy_bytes])
def test_live_face_is_warm_against_background(encode: object) -> None:
    thermal = load_thermal(encode(_frame(34.5)))  # type: ignore[operator]
    evidence = thermal_evidence(thermal, RGB_SHAPE, _points(), BOX)
    assert evidence.skin_c == pytest.approx(34.5, abs=0.1)
    assert evidence.background_c == pytest.approx(22.0, abs=0.3)
    assert evidence.vote == "live"


@pytest.mark.parametrize("encode", [_png_bytes, _npy_bytes])
def test_paper_near_ambient_is_spoof(encode: object) -> None:
    thermal = load_thermal(encode(_frame(22.4)))  # type: ignore[operator]
    assert thermal_evidence(thermal, RGB_SHAPE, _points(), BOX).vote == "spoof"


def test_lower_resolution_thermal_is_scaled_to_rgb() -> None:
    evidence = thermal_evidence(_frame(35.0, scale=4), RGB_SHAPE, _points(), BOX)
    assert evidence.vote == "live"


def test_non_thermal_bytes_are_refused() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    with pytest.raises(UnsupportedImage):
        load_thermal(buffer.getvalue())
    with pytest.raises(UnsupportedImage):
        load_thermal(b"not an image")
