"""Radiometric thermal frames for screening kiosks: the format contract and its readers.

A frame is a 2-D array of **unsigned 16-bit integers in centi-kelvin** (``value / 100 −
273.15`` is °C; 31065 is 37.5 °C), the radiometric output of common thermal cores (e.g.
Y16 over UVC), registered to the RGB frame: the same field of view, pixel for pixel at the
RGB frame's size. Readers:

* a ``.npy`` file (``numpy.save`` of the array; other integer types, and floats holding
  centi-kelvin, are accepted when every value fits 16 bits unsigned);
* a 16-bit greyscale PNG of the same values;
* a raw stream (a file, a pipe or a character device) of little-endian uint16 frames of a
  given width and height, back to back: :class:`RawY16Stream`.

A frame of another size with the same aspect ratio (a sensor of lower resolution with the same
field of view) is scaled to the RGB frame (nearest neighbour: no invented temperatures).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
from PIL import Image

from facekey.errors import UnsupportedImage
from facekey.vision.types import FloatArray

KELVIN: Final = 273.15
_NPY_MAGIC: Final = b"\x93NUMPY"
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
#: Aspect ratios of the thermal and RGB frames may differ this much (rounding of sizes).
ASPECT_TOLERANCE: Final = 0.02


def to_celsius(centi_kelvin: np.ndarray) -> FloatArray:
    """°C (float32) of a centi-kelvin array."""
    return (centi_kelvin.astype(np.float32) / np.float32(100.0) - np.float32(KELVIN)).astype(
        np.float32
    )


def centi_kelvin(celsius: float | np.ndarray) -> np.ndarray:
    """The uint16 centi-kelvin value(s) of °C (for writing frames, in tests and tools)."""
    values = np.rint((np.asarray(celsius, dtype=np.float64) + KELVIN) * 100.0)
    return np.clip(values, 0, 65535).astype(np.uint16)


def decode_thermal(data: bytes) -> FloatArray:
    """A frame in °C from ``.npy`` or 16-bit PNG bytes in centi-kelvin."""
    if data.startswith(_NPY_MAGIC):
        array = np.load(io.BytesIO(data), allow_pickle=False)
    elif data.startswith(_PNG_MAGIC):
        image = Image.open(io.BytesIO(data))
        if image.mode not in ("I;16", "I;16B", "I;16L", "I"):
            raise UnsupportedImage(f"a thermal PNG must be 16-bit greyscale, not {image.mode}")
        array = np.asarray(image)
    else:
        raise UnsupportedImage("a thermal frame is a .npy array or a 16-bit PNG, in centi-kelvin")
    return to_celsius(_checked(array))


def read_thermal_file(path: Path) -> FloatArray:
    """A thermal frame file in °C (see :func:`decode_thermal`)."""
    return decode_thermal(path.read_bytes())


def _checked(array: np.ndarray) -> np.ndarray:
    if array.ndim != 2 or array.size == 0:
        raise UnsupportedImage(f"a thermal frame is one 2-D channel, not shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating) and _centi_kelvin_floats(array):
        array = np.rint(array)
    elif not np.issubdtype(array.dtype, np.integer):
        raise UnsupportedImage(
            f"a thermal frame holds unsigned 16-bit centi-kelvin integers, not {array.dtype}"
        )
    if int(array.min()) < 0 or int(array.max()) > 65535:
        raise UnsupportedImage("thermal values must fit 16 bits unsigned (centi-kelvin)")
    return array.astype(np.uint16)


def _centi_kelvin_floats(array: np.ndarray) -> bool:
    """Floats that can only be centi-kelvin (°C or kelvin would be far below 10,000)."""
    return bool(np.isfinite(array).all()) and float(np.median(array)) > 10_000


def registered(thermal: FloatArray, rgb_shape: tuple[int, ...]) -> FloatArray:
    """``thermal`` at the RGB frame's size (scaled when only the resolution differs)."""
    height, width = rgb_shape[:2]
    if thermal.shape == (height, width):
        return thermal
    ratio = (thermal.shape[1] / thermal.shape[0]) / (width / height)
    if abs(ratio - 1.0) > ASPECT_TOLERANCE:
        raise UnsupportedImage(
            f"the thermal frame ({thermal.shape[1]}×{thermal.shape[0]}) does not cover the RGB "
            f"frame ({width}×{height}): register it to the same field of view"
        )
    rows = np.minimum((np.arange(height) * thermal.shape[0]) // height, thermal.shape[0] - 1)
    cols = np.minimum((np.arange(width) * thermal.shape[1]) // width, thermal.shape[1] - 1)
    return np.ascontiguousarray(thermal[rows][:, cols])


class RawY16Stream:
    """Frames of little-endian uint16 centi-kelvin, ``width`` × ``height``, back to back."""

    def __init__(self, stream: BinaryIO, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError("a raw thermal stream needs its frame width and height")
        self._stream = stream
        self._shape = (height, width)
        self._size = width * height * 2

    def frames(self) -> Iterator[FloatArray]:
        """The frames in °C until the stream ends (a partial last frame is dropped)."""
        while True:
            data = self._stream.read(self._size)
            if len(data) < self._size:
                return
            yield to_celsius(np.frombuffer(data, dtype="<u2").reshape(self._shape))
