"""The calibration tables that ship with facekey (score → FMR per engine version).

Tables are measured with ``facekey calibrate`` and stored as
``facekey/calibrations/<engine id>-<engine version>.json``. Decision policies read them.
"""

from __future__ import annotations

from importlib import resources

from facekey.engines.base import EngineInfo
from facekey.evaluation.metrics import CalibrationTable

PACKAGE = "facekey.calibrations"


def calibration_name(engine_id: str, engine_version: str) -> str:
    """File name of the table for one engine version."""
    return f"{engine_id}-{engine_version}.json"


def shipped_calibration(info: EngineInfo) -> CalibrationTable | None:
    """The packaged table for this engine version, or None when there is none."""
    resource = resources.files(PACKAGE) / calibration_name(info.id, info.version)
    if not resource.is_file():
        return None
    return CalibrationTable.from_json(resource.read_text(encoding="utf-8"))
