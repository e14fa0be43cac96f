"""Versioned template bytes: the only form in which an embedding leaves a process.

Layout (little-endian)::

    magic "FKT1" | format u8 | dtype u8 | dimension u16 | quality f32
    | engine id (u8 length + UTF-8) | engine version (u8 length + UTF-8) | vector

A template is tied to the engine (and engine version) that made it: comparing templates of
different engines raises :class:`EngineMismatch`. There is no pickle anywhere.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from facekey.errors import EngineMismatch, TemplateFormatError
from facekey.vision.types import FloatArray

MAGIC: Final = b"FKT1"
FORMAT_VERSION: Final = 1
_DTYPES: Final[dict[int, np.dtype[np.floating]]] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f2"),
}
_HEADER = struct.Struct("<4sBBHf")
#: Two faces closer than this (1 − cosine) are one frame twice, not two views.
_SAME_FACE_DISTANCE: Final = 1e-4


@dataclass(frozen=True, eq=False)
class Template:
    """A face embedding with the identity of the engine that produced it."""

    engine_id: str
    engine_version: str
    vector: FloatArray
    quality: float = 0.0

    @property
    def dimension(self) -> int:
        return int(self.vector.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Template):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def check_comparable(self, other: Template) -> None:
        """Raise :class:`EngineMismatch` unless both templates come from the same engine."""
        mine = (self.engine_id, self.engine_version, self.dimension)
        theirs = (other.engine_id, other.engine_version, other.dimension)
        if mine != theirs:
            raise EngineMismatch(
                f"cannot compare a {self.engine_id} {self.engine_version} template with a "
                f"{other.engine_id} {other.engine_version} one; re-template with one engine"
            )

    def similarity(self, other: Template) -> float:
        """Cosine similarity in [-1, 1]; higher means more alike."""
        self.check_comparable(other)
        return cosine(self.vector, other.vector)

    def to_bytes(self, *, dtype: str = "float32") -> bytes:
        """Serialize; ``dtype`` may be "float32" or "float16"."""
        code = {"float32": 1, "float16": 2}.get(dtype)
        if code is None:
            raise ValueError(f"unsupported template dtype {dtype!r}")
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, code, self.dimension, self.quality)
        vector = np.ascontiguousarray(self.vector, dtype=_DTYPES[code]).tobytes()
        return header + _short_str(self.engine_id) + _short_str(self.engine_version) + vector

    @classmethod
    def from_bytes(cls, data: bytes) -> Template:
        """Parse bytes made by :meth:`to_bytes`; raise :class:`TemplateFormatError`."""
        if len(data) < _HEADER.size:
            raise TemplateFormatError("template bytes are too short")
        magic, version, code, dim, quality = _HEADER.unpack_from(data)
        if magic != MAGIC or version != FORMAT_VERSION or code not in _DTYPES:
            raise TemplateFormatError("not a facekey template (bad magic, version or dtype)")
        engine_id, offset = _read_short_str(data, _HEADER.size)
        engine_version, offset = _read_short_str(data, offset)
        dtype = _DTYPES[code]
        if len(data) - offset != dim * dtype.itemsize:
            raise TemplateFormatError(f"template vector should hold {dim} values")
        vector = np.frombuffer(data, dtype=dtype, offset=offset).astype(np.float32)
        return cls(engine_id, engine_version, vector, float(quality))


def cosine(a: FloatArray, b: FloatArray) -> float:
    """Cosine similarity of two vectors (0 when either is all zeros)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


def _short_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise ValueError("engine identifiers are at most 255 bytes")
    return bytes([len(raw)]) + raw


def _read_short_str(data: bytes, offset: int) -> tuple[str, int]:
    if offset >= len(data):
        raise TemplateFormatError("template bytes end inside the engine identity")
    end = offset + 1 + data[offset]
    if end > len(data):
        raise TemplateFormatError("template bytes end inside the engine identity")
    try:
        return data[offset + 1 : end].decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise TemplateFormatError("engine identity is not UTF-8") from exc


def choose_diverse(qualities: Sequence[float], vectors: FloatArray, k: int) -> list[int]:
    """Indices of up to ``k`` faces that are good and unlike each other, best first.

    The best quality comes first; each next one is the face that adds the most: its quality
    times how far it is from the closest one already chosen (1 − cosine). Near-copies of a
    chosen frame add almost nothing, so a burst's k picks spread over its poses and lights.
    """
    if len(qualities) != len(vectors):
        raise ValueError(f"{len(qualities)} qualities for {len(vectors)} vectors")
    if k < 1 or not len(vectors):
        return []
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    quality = np.asarray(qualities, dtype=np.float64)
    chosen = [int(np.argmax(quality))]
    closest = unit @ unit[chosen[0]]
    while len(chosen) < min(k, len(vectors)):
        distance = 1.0 - closest
        gain = np.where(distance > _SAME_FACE_DISTANCE, quality * distance, -np.inf)
        gain[chosen] = -np.inf
        best = int(np.argmax(gain))
        if not np.isfinite(gain[best]):
            break
        chosen.append(best)
        closest = np.maximum(closest, unit @ unit[best])
    return chosen
