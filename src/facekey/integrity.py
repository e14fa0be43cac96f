"""sha256 pins for model files: nothing is loaded whose digest differs from the pinned one."""

from __future__ import annotations

import hashlib
from pathlib import Path

from facekey.errors import ModelIntegrityError, ModelNotFound

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> Path:
    """Return ``path`` if its sha256 is ``expected``; else raise a :class:`ModelIntegrityError`."""
    if not path.is_file():
        raise ModelNotFound(f"model file {path} does not exist")
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ModelIntegrityError(
            f"{path.name} has sha256 {actual}, expected {expected.lower()}; refusing to load it"
        )
    return path
