"""Safe image decoding: bytes in, an RGB uint8 array out, or a specific :class:`ImageError`.

Limits on bytes and pixels are checked before any pixel is decoded, so a small file that
declares a huge image (a decompression bomb) costs nothing. What is accepted is decoded at the
size the work needs (:class:`~facekey.config.ImageLimits`): a JPEG straight at a reduced DCT
scale, anything then brought down to ``work_side``; a 6000×6000 JPEG of half a megabyte costs
about 0.1 s and 30 MB, not 30 s and 1.5 GB. Entry points that face a network take bytes only,
never a path or a URL.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import io
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facekey.config import ImageLimits
from facekey.errors import (
    EmptyImage,
    ImageBusy,
    ImageTooLarge,
    TruncatedImage,
    UnsupportedImage,
)
from facekey.vision.types import ImageArray

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
LARGE_LANE_WAIT_S: Final = 5.0
"""How long a large image waits for the large-image lane before the caller is told to retry."""

_LARGE_LANE = threading.Semaphore(1)


def decode_image(data: bytes, limits: ImageLimits | None = None) -> ImageArray:
    """Decode JPEG, PNG or WebP bytes into an upright H×W×3 RGB uint8 array.

    EXIF orientation is applied; the result is at most ``limits.work_side`` on its longer side.
    Raises :class:`EmptyImage`, :class:`ImageTooLarge`, :class:`UnsupportedImage`,
    :class:`TruncatedImage`, or :class:`ImageBusy` when a large image finds the large-image
    lane taken for longer than :data:`LARGE_LANE_WAIT_S`.
    """
    limits = limits or ImageLimits()
    if not data:
        raise EmptyImage("the image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"the image has {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes"
        )
    image = _open_checked(data, limits)
    width, height = image.size
    if width * height <= limits.work_side**2:
        return _decode(image, limits.work_side)
    # A large image is decoded in its own lane, one per process at a time: a stream of them
    # queues there instead of taking the cores and memory that ordinary requests need.
    if not _LARGE_LANE.acquire(timeout=LARGE_LANE_WAIT_S):
        raise ImageBusy(
            f"the image is {width}×{height} pixels and another large image is being decoded; "
            "retry shortly or send one at most "
            f"{limits.work_side}×{limits.work_side}",
            retry_after_s=1,
        )
    try:
        return _decode(image, limits.work_side)
    finally:
        _LARGE_LANE.release()
        _return_memory()


@contextlib.contextmanager
def _metadata_warnings_ignored() -> Iterator[None]:
    """Pillow warns of the metadata it skips (corrupt EXIF tags, a malformed MPO index) and
    goes on with the pixels: the sender's problem, not one for the server's log (or for a
    caller that turns warnings into errors)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        yield


def _decode(image: Image.Image, side: int) -> ImageArray:
    try:
        with _metadata_warnings_ignored():
            return _pixels(image, side)
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedImage(f"the {image.format} data is truncated or corrupt: {exc}") from exc


def _pixels(image: Image.Image, side: int) -> ImageArray:
    if image.format == "JPEG":
        # The smallest DCT scale that keeps at least half of ``side``: a 6000-pixel JPEG
        # is decoded at 1/4 (1500 pixels), not at 1/2 (3000) to be thrown away after.
        image.draft("RGB", (side // 2, side // 2))
    image.load()
    upright = ImageOps.exif_transpose(image)
    if max(upright.size) > side:
        upright.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    rgb = upright.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _return_memory() -> None:
    """Give the freed buffers of a large decode back to the system (glibc keeps them)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


#: Allocations from this size up get their own mapping, returned to the system when freed.
MMAP_THRESHOLD_BYTES: Final = 1 << 20
_M_MMAP_THRESHOLD: Final = -3  # mallopt's parameter number in glibc's malloc.h


def return_large_buffers() -> bool:
    """Make glibc give every buffer of a megabyte or more back to the system when it is freed.

    glibc raises its mmap threshold to the largest block freed so far (up to 32 MB): after one
    large image, the 1600-pixel working copies of the next ones come from the heap instead,
    which fragments and stays resident (a server worker measured +70 to +140 MB for good, see
    docs/hostile-load.md). A fixed threshold keeps that from happening. For long-running
    processes (the server's workers); False where the C library is not glibc.
    """
    libc = _glibc()
    return libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c") if sys.platform == "linux" else None
    libc = ctypes.CDLL(name) if name else None
    usable = libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt")
    return libc if usable else None


def read_image_file(path: Path, limits: ImageLimits | None = None) -> ImageArray:
    """Decode a local file (for the CLI and evaluation tools, never for network input)."""
    return decode_image(path.read_bytes(), limits)


def _open_checked(data: bytes, limits: ImageLimits) -> Image.Image:
    """Open the image lazily (header only) and check its format and size."""
    try:
        with _metadata_warnings_ignored():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=sorted(SUPPORTED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(
            f"the image declares more pixels than the limit of {limits.max_pixels:,}"
        ) from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedImage("not a JPEG, PNG or WebP image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedImage(f"the image header is truncated or corrupt: {exc}") from exc
    _check_cost(image, data, limits)
    return image


def _check_cost(image: Image.Image, data: bytes, limits: ImageLimits) -> None:
    """Refuse an image whose decoding would cost more than the limits allow."""
    width, height = image.size
    if width <= 0 or height <= 0:
        raise UnsupportedImage(f"the image declares an empty size {width}×{height}")
    progressive = image.format == "JPEG" and bool(image.info.get("progressive"))
    if image.format != "JPEG":
        kind, pixels = f"a {image.format} image", limits.max_pixels_png_webp
    elif progressive:
        kind, pixels = "a progressive JPEG", limits.max_pixels_progressive
    else:
        kind, pixels = "a JPEG", limits.max_pixels
    if max(width, height) > limits.max_side or width * height > pixels:
        raise ImageTooLarge(
            f"the image is {width}×{height} pixels; {kind} may have at most "
            f"{pixels:,} pixels and {limits.max_side:,} per side"
        )
    if progressive and len(data) > limits.max_bytes_progressive:
        raise ImageTooLarge(
            f"the image has {len(data):,} bytes; a progressive JPEG may have at most "
            f"{limits.max_bytes_progressive:,} (save it as a baseline JPEG)"
        )
    if image.format == "JPEG":
        _check_scans(data, limits)


def _check_scans(data: bytes, limits: ImageLimits) -> None:
    """Refuse a JPEG with more scans than a camera writes: each scan is a pass over the image.

    A start-of-scan marker (FF DA) cannot occur inside entropy-coded data, where every FF byte
    is stuffed with a 00, so counting the byte pair counts the scans.
    """
    scans = data.count(b"\xff\xda")
    if scans > limits.max_jpeg_scans:
        raise ImageTooLarge(
            f"the JPEG has {scans} scans; at most {limits.max_jpeg_scans} are accepted"
        )
