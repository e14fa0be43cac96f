"""`facekey simulate checkout` on the fixture faces: every required figure is written."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import people_folder
from facekey.config import Settings
from facekey.evaluation.simulate import run_checkout_simulation

REQUIRED = (
    "genuine_attempts",
    "impostor_attempts",
    "approved_face_only",
    "approved_after_step_up",
    "step_ups",
    "false_charges",
    "latency_ms_p50",
    "latency_ms_p99",
)


def test_simulation_writes_every_figure(lfw: Path, tmp_path: Path, settings: Settings) -> None:
    people = people_folder(lfw.glob("*.jpg"), tmp_path / "people")
    out = tmp_path / "sim"
    result = run_checkout_simulation(
        images=people, enrolled=3, attempts=8, out_dir=out, settings=settings
    )
    saved = json.loads((out / "simulation.json").read_text())
    assert all(key in saved for key in REQUIRED)
    assert saved["genuine_attempts"] == 4 and saved["impostor_attempts"] == 4
    assert saved["false_charges"] == 0
    assert saved["approved_face_only"] + saved["approved_after_step_up"] >= 1
    assert result["enrolled"] == 3
    assert "false charges" in (out / "simulation.md").read_text()
