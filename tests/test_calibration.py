"""Calibration tables per engine and condition: shipped ones, installed ones, pinned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facekey.calibration import (
    UNMASKED,
    Calibrations,
    CalibrationTable,
    calibration_name,
    condition_of,
)
from facekey.engines.base import EngineInfo
from facekey.errors import ModelIntegrityError
from facekey.integrity import sha256_file

INFO = EngineInfo("hand", "1", 8, 64)
POINTS = ((0.5, 1e-1, 0.0), (0.7, 1e-3, 0.05), (0.9, 1e-5, 0.2))


def _table(condition: str = UNMASKED, shift: float = 0.0) -> CalibrationTable:
    points = tuple((s + shift, f, n) for s, f, n in POINTS)
    return CalibrationTable("hand", "1", 100_000, 100, points, condition=condition)  # type: ignore[arg-type]


def _write(table: CalibrationTable, folder: Path) -> Path:
    path = folder / calibration_name(table.engine, table.engine_version, table.condition)
    path.write_text(table.to_json())
    return path


def test_conditions_and_names() -> None:
    assert condition_of(False, False) == "no-mask/no-mask"
    assert condition_of(True, False) == condition_of(False, True) == "mask/no-mask"
    assert condition_of(True, True) == "mask/mask"
    assert calibration_name("e", "2") == "e-2.json"
    assert calibration_name("e", "2", "mask/no-mask") == "e-2.mask-no-mask.json"


def test_json_round_trip_keeps_the_condition_and_defaults_to_unmasked() -> None:
    masked = _table("mask/mask")
    assert CalibrationTable.from_json(masked.to_json()) == masked
    document = json.loads(_table().to_json())
    del document["condition"]
    assert CalibrationTable.from_json(json.dumps(document)).condition == UNMASKED
    with pytest.raises(ValueError, match="condition"):
        _table("masks/everywhere")


def test_installed_tables_come_first_and_are_pinned(tmp_path: Path) -> None:
    calibrations = Calibrations(tmp_path / "calibrations")
    assert calibrations.for_engine(INFO) is None  # nothing shipped for "hand"
    unmasked = _write(_table(), tmp_path)
    masked = _write(_table("mask/no-mask", shift=-0.1), tmp_path)
    with pytest.raises(ModelIntegrityError):
        calibrations.install(unmasked, sha256="0" * 64)
    calibrations.install(unmasked, sha256=sha256_file(unmasked))
    calibrations.install(masked, sha256=sha256_file(masked))
    found = calibrations.for_engine(INFO)
    assert found is not None and found.has("mask/no-mask") and not found.has("mask/mask")
    assert found.table("mask/no-mask").threshold_for(1e-3) == pytest.approx(0.6)
    assert found.table("mask/mask") is found.unmasked  # no table of its own: the unmasked one


def test_a_tampered_installed_table_is_refused(tmp_path: Path) -> None:
    path = _write(_table(), tmp_path)
    folder = tmp_path / "calibrations"
    Calibrations(folder).install(path, sha256=sha256_file(path))
    stored = next((folder / "files").iterdir())
    stored.write_text(stored.read_text().replace("0.7", "0.2"))
    with pytest.raises(ModelIntegrityError):
        Calibrations(folder).for_engine(INFO)
