"""sha256 pins for model and calibration files: nothing is loaded whose digest differs from the
pinned one."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
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


@dataclass(frozen=True)
class PinnedFile:
    """One file an operator registered, with the digest they pinned it by.

    ``engine`` names the engine the file serves (its model, or one of its calibration tables).
    """

    engine: str
    sha256: str
    file: str
    original_name: str
    added_at: str

    def path(self, directory: Path) -> Path:
        """The registered copy, its digest checked."""
        return verify_sha256(directory / "files" / self.file, self.sha256)


class PinnedFiles:
    """Operator-supplied files, registered with a pinned sha256 (``facekey models add``).

    Files are copied into ``<directory>/files/<sha256><suffix>`` and listed in
    ``registry.json``. Nothing is ever downloaded: a file reaches facekey only as a file an
    operator names, with the digest they expect.
    """

    REGISTRY = "registry.json"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, source: Path, *, sha256: str, engine: str) -> PinnedFile:
        """Check ``source`` against ``sha256``, copy it in and register it for ``engine``."""
        expected = sha256.strip().lower()
        if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
            raise ModelIntegrityError("--sha256 must be 64 hexadecimal digits")
        verify_sha256(source, expected)
        files = self.directory / "files"
        files.mkdir(parents=True, exist_ok=True)
        name = expected + source.suffix.lower()
        _atomic_write(files / name, source.read_bytes())
        record = PinnedFile(
            engine=engine,
            sha256=expected,
            file=name,
            original_name=source.name,
            added_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        records = [r for r in self.all() if r.sha256 != expected]
        entries = [asdict(r) for r in [*records, record]]
        payload = json.dumps({"format": 1, "models": entries}, indent=2)
        _atomic_write(self.directory / self.REGISTRY, payload.encode())
        return record

    def all(self) -> list[PinnedFile]:
        """Every registered file, oldest first."""
        path = self.directory / self.REGISTRY
        if not path.is_file():
            return []
        entries = json.loads(path.read_text(encoding="utf-8"))["models"]
        return [PinnedFile(**entry) for entry in entries]

    def latest(self, engine: str) -> PinnedFile:
        """The most recently registered file for ``engine``."""
        records = [r for r in self.all() if r.engine == engine]
        if not records:
            raise ModelNotFound(
                f"no model file is registered for {engine}; add one with "
                f"`facekey models add PATH --sha256 DIGEST --engine {engine}`"
            )
        return records[-1]


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
