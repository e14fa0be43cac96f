"""Operator-supplied model files, registered with a pinned sha256 (``facekey models add``).

Files are copied into ``<data dir>/models/files/<sha256><suffix>`` and listed in
``registry.json``. Nothing is ever downloaded: a model reaches facekey only as a file an
operator names, with the digest they expect.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from facekey.errors import ModelIntegrityError, ModelNotFound
from facekey.integrity import verify_sha256

REGISTRY = "registry.json"


@dataclass(frozen=True)
class ModelRecord:
    """One registered model file."""

    engine: str
    sha256: str
    file: str
    original_name: str
    added_at: str

    def path(self, models_dir: Path) -> Path:
        """The registered copy, its digest checked."""
        return verify_sha256(models_dir / "files" / self.file, self.sha256)


def add_model_file(source: Path, *, sha256: str, engine: str, models_dir: Path) -> ModelRecord:
    """Check ``source`` against ``sha256``, copy it in and register it for ``engine``."""
    expected = sha256.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ModelIntegrityError("--sha256 must be 64 hexadecimal digits")
    verify_sha256(source, expected)
    files = models_dir / "files"
    files.mkdir(parents=True, exist_ok=True)
    name = expected + source.suffix.lower()
    shutil.copyfile(source, files / name)
    record = ModelRecord(
        engine=engine,
        sha256=expected,
        file=name,
        original_name=source.name,
        added_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    records = [r for r in registered_models(models_dir) if r.sha256 != expected]
    _write_registry(models_dir, [*records, record])
    return record


def registered_models(models_dir: Path) -> list[ModelRecord]:
    """Every registered model, oldest first."""
    path = models_dir / REGISTRY
    if not path.is_file():
        return []
    entries = json.loads(path.read_text(encoding="utf-8"))["models"]
    return [ModelRecord(**entry) for entry in entries]


def model_for_engine(engine: str, models_dir: Path) -> ModelRecord:
    """The most recently registered model for ``engine``."""
    records = [r for r in registered_models(models_dir) if r.engine == engine]
    if not records:
        raise ModelNotFound(
            f"no model file is registered for {engine}; add one with "
            f"`facekey models add PATH --sha256 DIGEST --engine {engine}`"
        )
    return records[-1]


def _write_registry(models_dir: Path, records: list[ModelRecord]) -> None:
    payload = json.dumps({"format": 1, "models": [asdict(r) for r in records]}, indent=2)
    fd, tmp = tempfile.mkstemp(dir=models_dir, prefix=".registry-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(payload)
    os.replace(tmp, models_dir / REGISTRY)
