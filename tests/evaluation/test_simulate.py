"""`facekey simulate checkout` on the fixture faces: every required figure is written."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import people_folder
from facekey.config import Settings
from facekey.evaluation.simulate import run_checkout_simulation
from facekey.evaluation.simulate_migration import run_migration_simulation

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


def test_masked_probes_are_counted_apart(
    lfw: Path, fixtures: Path, tmp_path: Path, settings: Settings
) -> None:
    """With MFR2's mask_labels.txt beside the images, masked genuine probes are reported."""
    photos = [*lfw.glob("*.jpg"), *(fixtures / "mfr2").glob("*.png")]
    people = people_folder(photos, tmp_path / "data" / "images")
    # The unmasked photo first in name order, so it is the one enrolled; the masked one is the
    # photo kept back for his checkouts.
    folder = people / "AdrianDunbar"
    (folder / "AdrianDunbar_0001.png").rename(folder / "AdrianDunbar_0003.png")
    (people.parent / "mask_labels.txt").write_text(
        "AdrianDunbar, 2, no-mask\nAdrianDunbar, 3, surgical_blue\n"
    )
    result = run_checkout_simulation(
        images=people, enrolled=4, attempts=40, settings=settings, seed=3
    )
    assert result["masked_genuine_attempts"] >= 1
    assert result["masked_genuine_approval_rate"] is not None
    assert result["false_charges"] == 0


def test_a_small_network_migrates_while_it_pays(
    lfw: Path, tmp_path: Path, settings: Settings
) -> None:
    people = people_folder(lfw.glob("*.jpg"), tmp_path / "people")
    result = run_migration_simulation(
        images=people, enrolled=3, retention_share=0.5, settings=settings, seed=1
    )
    assert result["unable_to_pay"] == 0 and result["false_charges"] == 0
    assert result["finished"] is True, result["not_finished_because"]
    assert result["status"]["engine"] == "face-reid-0095"
    assert result["rounds"][0]["name"] == "before: dlib-resnet-v1"
    assert result["rounds"][-1]["name"] == "after: face-reid-0095"
