"""A per-network secret orthonormal transform of embeddings.

Templates are stored and searched only after multiplication by a secret random orthonormal
matrix ``Q``. Because ``Q`` is orthonormal, dot products, norms and cosines are unchanged, so
matching works exactly as on the raw embeddings. What changes is everything else:

* **Unlinkable across networks.** Each network (and engine, dimension, version) derives its own
  ``Q`` from the operator's secret, so the same face enrolled in two networks gives templates
  that cannot be compared with each other.
* **Renewable.** After a leak, bump ``version`` (or change the secret): stolen templates are
  useless against the renewed gallery. Stored templates move to the new space with
  :func:`retransform` (invert the old ``Q``, apply the new one) without re-enrolment.

This is not encryption: a template is still sealed at rest (:mod:`facekey.security.envelope`).
The transform protects the searchable copy (the index in memory) and the links between networks.
"""

from __future__ import annotations

import hashlib
from functools import cached_property

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from facekey.errors import KeyUnavailable

__all__ = ["MIN_SECRET_SIZE", "TemplateTransform", "retransform"]

MIN_SECRET_SIZE = 32
"""Fewest bytes accepted as a transform secret."""

_Matrix = npt.NDArray[np.float64]


class TemplateTransform:
    """The secret orthonormal transform of one network, engine, dimension and version."""

    def __init__(
        self, secret: bytes, *, network_id: str, engine_id: str, dimension: int, version: int
    ) -> None:
        if len(secret) < MIN_SECRET_SIZE:
            raise KeyUnavailable(f"a transform secret needs at least {MIN_SECRET_SIZE} bytes")
        if dimension < 1:
            raise ValueError(f"dimension must be positive, got {dimension}")
        self.network_id = network_id
        self.engine_id = engine_id
        self.dimension = dimension
        self.version = version
        # Only the derived seed is kept: the secret itself never lives on the instance.
        self._seed = _derive_seed(secret, f"{network_id}:{engine_id}:{dimension}:{version}")

    def __repr__(self) -> str:
        return (
            f"TemplateTransform(network_id={self.network_id!r}, engine_id={self.engine_id!r}, "
            f"dimension={self.dimension}, version={self.version})"
        )

    @cached_property
    def _gaussian(self) -> _Matrix:
        rng = np.random.Generator(np.random.PCG64(self._seed))
        return rng.standard_normal((self.dimension, self.dimension))

    @cached_property
    def _matrix(self) -> _Matrix:
        q, r = np.linalg.qr(self._gaussian)
        # QR is unique only up to the signs of R's diagonal; fixing them makes Q a function of
        # the seed alone (and Haar-distributed).
        signs = np.where(np.diag(r) < 0, -1.0, 1.0)
        return np.ascontiguousarray(q * signs)

    @cached_property
    def fingerprint(self) -> str:
        """A non-secret digest of the generated matrix, to store next to transformed templates.

        numpy does not promise that ``Generator.standard_normal`` yields the same stream in every
        release; a fingerprint that differs from the stored one after an upgrade means the stored
        templates no longer match this transform.
        """
        return hashlib.sha256(self._gaussian.tobytes()).hexdigest()[:16]

    def apply(self, vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Transform one vector (shape ``(D,)``) or a batch (shape ``(N, D)``)."""
        return _as_float32(self._checked(vectors) @ self._matrix.T)

    def invert(self, vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Undo :meth:`apply` (multiply by the transpose)."""
        return _as_float32(self._checked(vectors) @ self._matrix)

    def _checked(self, vectors: npt.ArrayLike) -> npt.NDArray[np.float64]:
        array = np.asarray(vectors, dtype=np.float64)
        if array.ndim not in (1, 2) or array.shape[-1] != self.dimension:
            raise ValueError(
                f"expected shape ({self.dimension},) or (N, {self.dimension}), got {array.shape}"
            )
        return array


def retransform(
    vectors: npt.ArrayLike, old: TemplateTransform, new: TemplateTransform
) -> npt.NDArray[np.float32]:
    """Move templates made with ``old`` into the space of ``new`` (used when renewing)."""
    if (old.engine_id, old.dimension) != (new.engine_id, new.dimension):
        raise ValueError("retransform needs the same engine and dimension on both sides")
    # One float64 product: going through float32 in between would add rounding twice.
    combined = old._matrix @ new._matrix.T
    return _as_float32(old._checked(vectors) @ combined)


def _derive_seed(secret: bytes, label: str) -> int:
    info = f"facekey-transform:{label}".encode()
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return int.from_bytes(hkdf.derive(secret), "big")


def _as_float32(array: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return array.astype(np.float32)
