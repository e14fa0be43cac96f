"""Property tests of :func:`facekey.imaging.decode_image`: whatever the bytes, the answer is an
upright RGB uint8 array within the work size, or an :class:`~facekey.errors.ImageError`.

The inputs are arbitrary bytes, and real JPEG (baseline and progressive), PNG and WebP files of
a real face mutated the way a fuzzer does: bytes flipped, dropped, inserted, repeated, the file
cut short, header fields overwritten. Nothing else may escape: not a Pillow exception, not a
warning turned error, not an array of the wrong shape.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from facekey.config import ImageLimits
from facekey.errors import ImageError
from facekey.imaging import decode_image

FACE = Path(__file__).parent / "fixtures" / "lfw" / "Aaron_Sorkin_0001.jpg"
#: Small limits, so the mutated headers cross them and the work size is enforced.
LIMITS = ImageLimits(
    max_bytes=256 * 1024,
    max_pixels=2_000_000,
    max_pixels_progressive=1_000_000,
    max_bytes_progressive=128 * 1024,
    max_jpeg_scans=12,
    max_pixels_png_webp=1_000_000,
    max_side=4000,
    work_side=256,
)


@cache
def _sources() -> tuple[bytes, ...]:
    """A real face, larger than the work size, in every supported encoding."""
    face = Image.open(FACE).convert("RGB")
    face = face.resize((400, 300))
    encodings: list[tuple[str, dict[str, object]]] = [
        ("JPEG", {"quality": 80}),
        ("JPEG", {"quality": 80, "progressive": True}),
        ("PNG", {}),
        ("WEBP", {"quality": 70}),
    ]
    found = []
    for fmt, options in encodings:
        buffer = io.BytesIO()
        face.save(buffer, format=fmt, **options)
        found.append(buffer.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: decoding turns it upright
    buffer = io.BytesIO()
    face.save(buffer, format="JPEG", exif=exif.tobytes())
    found.append(buffer.getvalue())
    return tuple(found)


def _check(data: bytes) -> None:
    try:
        image = decode_image(data, LIMITS)
    except ImageError:
        return
    assert image.dtype == np.uint8
    assert image.ndim == 3 and image.shape[2] == 3
    assert min(image.shape[:2]) >= 1 and max(image.shape[:2]) <= LIMITS.work_side
    assert image.flags.c_contiguous


@dataclass(frozen=True)
class Mutant:
    """A real image and the edits a fuzzer made to it (short to print when a test fails)."""

    source: int
    edits: tuple[tuple[str, int, int, bytes], ...]

    def data(self) -> bytes:
        data = bytearray(_sources()[self.source])
        for kind, at, amount, blob in self.edits:
            if kind == "flip" and at < len(data):
                data[at] ^= 1 << amount % 8
            elif kind == "set":
                data[at : at + len(blob)] = blob
            elif kind == "drop":
                del data[at : at + amount]
            elif kind == "insert":
                data[at:at] = blob
            elif kind == "repeat":
                data[at:at] = data[at : at + amount] * (1 + amount % 8)
            elif kind == "cut":
                del data[at:]
        return bytes(data)


_EDIT = st.tuples(
    st.sampled_from(["flip", "set", "drop", "insert", "repeat", "cut"]),
    # Most edits land in the headers, where the decoder's decisions are made.
    st.one_of(st.integers(0, 400), st.integers(0, 40_000)),
    st.integers(1, 256),
    st.one_of(
        st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f", b"\xff\xd8"]),
        st.binary(min_size=1, max_size=16),
    ),
)
MUTANTS = st.builds(
    Mutant, st.integers(0, len(_sources()) - 1), st.lists(_EDIT, min_size=1, max_size=6).map(tuple)
)


@settings(max_examples=300)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_raise_an_image_error(data: bytes) -> None:
    _check(data)


@settings(max_examples=300)
@given(st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF"]), st.binary(max_size=512))
def test_a_format_signature_then_anything(signature: bytes, rest: bytes) -> None:
    _check(signature + rest)


@settings(max_examples=600)
@given(MUTANTS)
def test_mutated_real_images_decode_or_raise_an_image_error(mutant: Mutant) -> None:
    _check(mutant.data())


def test_the_real_images_decode_within_the_work_size() -> None:
    for data in _sources():
        image = decode_image(data, LIMITS)
        # a JPEG decodes at the DCT scale that keeps at least half the work size
        assert LIMITS.work_side // 2 <= max(image.shape[:2]) <= LIMITS.work_side
    rotated = decode_image(_sources()[-1], LIMITS)
    assert rotated.shape[0] > rotated.shape[1]  # EXIF orientation applied
