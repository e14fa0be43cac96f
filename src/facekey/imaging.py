"""Safe image decoding: bytes in, an RGB uint8 array out, or a specific :class:`ImageError`.

Limits on bytes and pixels are checked before any pixel is decoded, so a small file that
declares a huge image (a decompression bomb) costs nothing. Entry points that face a network
take bytes only, never a path or a URL.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facekey.config import ImageLimits
from facekey.errors import EmptyImage, ImageTooLarge, TruncatedImage, UnsupportedImage
from facekey.vision.types import ImageArray

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


def decode_image(data: bytes, limits: ImageLimits | None = None) -> ImageArray:
    """Decode JPEG, PNG or WebP bytes into an upright H×W×3 RGB uint8 array.

    EXIF orientation is applied. Raises :class:`EmptyImage`, :class:`ImageTooLarge`,
    :class:`UnsupportedImage` or :class:`TruncatedImage`.
    """
    limits = limits or ImageLimits()
    if not data:
        raise EmptyImage("the image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"the image has {len(data)} bytes; the limit is {limits.max_bytes}")
    image = _open_checked(data, limits)
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedImage(f"the {image.format} data is truncated or corrupt: {exc}") from exc
    return np.ascontiguousarray(np.asarray(upright.convert("RGB"), dtype=np.uint8))


def read_image_file(path: Path, limits: ImageLimits | None = None) -> ImageArray:
    """Decode a local file (for the CLI and evaluation tools, never for network input)."""
    return decode_image(path.read_bytes(), limits)


def _open_checked(data: bytes, limits: ImageLimits) -> Image.Image:
    """Open the image lazily (header only) and check its format and size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=sorted(SUPPORTED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"the image declares too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedImage("not a JPEG, PNG or WebP image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedImage(f"the image header is truncated or corrupt: {exc}") from exc
    _check_size(image.size, limits)
    return image


def _check_size(size: tuple[int, int], limits: ImageLimits) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise UnsupportedImage(f"the image declares an empty size {width}×{height}")
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"the image is {width}×{height} pixels; the limits are {limits.max_pixels} pixels "
            f"and {limits.max_side} per side"
        )
