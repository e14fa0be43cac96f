from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facekey.config import ImageLimits
from facekey.errors import (
    EmptyImage,
    ImageError,
    ImageTooLarge,
    TruncatedImage,
    UnsupportedImage,
)
from facekey.imaging import decode_image


def _png_header(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring a huge image, with a tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_decodes_jpeg_to_rgb_uint8(lfw: Path) -> None:
    image = decode_image((lfw / "Aaron_Peirsol_0001.jpg").read_bytes())
    assert image.shape == (250, 250, 3)
    assert image.dtype == np.uint8
    assert image.flags.c_contiguous


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_decodes_supported_formats(lfw: Path, fmt: str) -> None:
    source = Image.open(lfw / "Aaron_Sorkin_0001.jpg")
    image = decode_image(_encode(source, fmt))
    assert image.shape == (250, 250, 3)


def test_greyscale_and_alpha_become_rgb(lfw: Path) -> None:
    source = Image.open(lfw / "Aaron_Sorkin_0001.jpg")
    assert decode_image(_encode(source.convert("L"), "PNG")).shape == (250, 250, 3)
    assert decode_image(_encode(source.convert("RGBA"), "PNG")).shape == (250, 250, 3)


def test_applies_exif_orientation(lfw: Path) -> None:
    source = Image.open(lfw / "Aaron_Sorkin_0001.jpg").crop((0, 0, 250, 120))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: the viewer must turn it 90° clockwise
    image = decode_image(_encode(source, "JPEG", exif=exif.tobytes()))
    assert image.shape == (250, 120, 3)


def test_empty_input() -> None:
    with pytest.raises(EmptyImage):
        decode_image(b"")


@pytest.mark.parametrize("data", [b"hello world", b"%PDF-1.4\n" + b"0" * 100, bytes(range(256))])
def test_non_image(data: bytes) -> None:
    with pytest.raises(UnsupportedImage):
        decode_image(data)


def test_unsupported_format(lfw: Path) -> None:
    gif = _encode(Image.open(lfw / "Aaron_Sorkin_0001.jpg"), "GIF")
    with pytest.raises(UnsupportedImage):
        decode_image(gif)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_jpeg(lfw: Path, keep: float) -> None:
    data = (lfw / "Aaron_Peirsol_0001.jpg").read_bytes()
    with pytest.raises(TruncatedImage):
        decode_image(data[: int(len(data) * keep)])


def test_truncated_png(lfw: Path) -> None:
    data = _encode(Image.open(lfw / "Aaron_Sorkin_0001.jpg"), "PNG")
    with pytest.raises(TruncatedImage):
        decode_image(data[: len(data) // 2])


def test_header_only_jpeg(lfw: Path) -> None:
    data = (lfw / "Aaron_Peirsol_0001.jpg").read_bytes()
    with pytest.raises(ImageError):
        decode_image(data[:20])


def test_decompression_bomb_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode_image(_png_header(30000, 30000))


def test_pixel_limit_is_configurable(lfw: Path) -> None:
    data = (lfw / "Aaron_Peirsol_0001.jpg").read_bytes()
    with pytest.raises(ImageTooLarge):
        decode_image(data, ImageLimits(max_pixels=250 * 249))


def test_byte_limit(lfw: Path) -> None:
    data = (lfw / "Aaron_Peirsol_0001.jpg").read_bytes()
    with pytest.raises(ImageTooLarge, match="bytes"):
        decode_image(data, ImageLimits(max_bytes=len(data) - 1))


def test_errors_share_one_base() -> None:
    for cls in (EmptyImage, TruncatedImage, UnsupportedImage, ImageTooLarge):
        assert issubclass(cls, ImageError)
