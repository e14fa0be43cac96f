"""eval liveness and liveness calibrate on tiny fixture folders (frames and sessions)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facekey.cli import app
from facekey.evaluation.liveness_calibration import threshold_at_apcer
from facekey.evaluation.liveness_eval import pad_metrics
from facekey.liveness.threshold import PassiveThreshold, load_threshold

FIXTURES = Path(__file__).parents[1] / "fixtures" / "liveness"
REQUIRED = ("apcer", "apcer_per_type", "bpcer", "bpcer_at_apcer", "samples", "failures_to_acquire")


def _copy(names: list[str], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        shutil.copyfile(FIXTURES / name, folder / name)
    return folder


def test_threshold_at_apcer_uses_the_worst_type() -> None:
    attacks = {"a": np.linspace(0, 1, 20), "b": np.array([0.1, 0.2, np.nan])}
    threshold = threshold_at_apcer(attacks, 0.05)
    assert 0.9473 < threshold <= 1.0  # one of 20 may pass, none of "b" does
    assert threshold_at_apcer({"b": np.array([0.1, 0.2, 0.3])}, 0.05) > 0.3


def test_pad_metrics_counts_no_face_as_rejected_and_refused() -> None:
    metrics = pad_metrics([0.9, 0.8, math.nan], {"print": [0.1, math.nan], "screen": [0.7]}, 0.5)
    assert metrics["bpcer"] == pytest.approx(1 / 3)
    assert metrics["apcer_per_type"] == {"print": 0.0, "screen": 1.0}
    assert metrics["apcer"] == 1.0
    assert set(metrics["bpcer_at_apcer"]) == {"0.05", "0.10"}


def test_eval_liveness_frames_writes_report(tmp_path: Path) -> None:
    live = _copy(["nuaa-live-0001_00_00_01_0.jpg", "pad-image_T1.jpg"], tmp_path / "live")
    attack = _copy(["nuaa-attack-0001_00_00_01_0.jpg", "pad-image_F1.jpg"], tmp_path / "print")
    out = tmp_path / "out"
    args = ["eval", "liveness", "--live", str(live), "--attack", str(attack), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert all(key in report for key in REQUIRED)
    assert report["apcer_per_type"] == {"print": 0.0}
    assert report["bpcer"] == 0.0
    assert report["samples"] == {"live": 2, "attack": {"print": 2}}
    assert (out / "report.md").is_file() and (out / "det.png").stat().st_size > 0


def test_eval_liveness_sequences_scores_sessions(tmp_path: Path) -> None:
    turns = sorted(p.name for p in FIXTURES.glob("head-turn-*.jpg"))
    live = tmp_path / "live"
    _copy(turns, live / "turn")
    attack = tmp_path / "blank"
    (attack / "s1").mkdir(parents=True)
    shutil.copyfile(FIXTURES / "nuaa-attack-0001_00_00_01_0.jpg", attack / "s1" / "a.jpg")
    out = tmp_path / "out"
    args = ["eval", "liveness", "--sequences", "--live", str(live), "--attack", str(attack)]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "sessions"
    assert report["samples"] == {"live": 1, "attack": {"blank": 1}}
    assert report["failures_to_acquire"]["attack"] == {"blank": 1}  # one frame: no decision
    assert report["apcer"] == 0.0


def test_calibrate_writes_a_versioned_file(tmp_path: Path) -> None:
    live = _copy(["nuaa-live-0001_00_00_01_0.jpg", "pad-image_T1.jpg"], tmp_path / "live")
    attack = _copy(["nuaa-attack-0001_00_00_01_0.jpg", "pad-image_F1.jpg"], tmp_path / "print")
    out = tmp_path / "threshold.json"
    args = ["liveness", "calibrate", "--live", str(live), "--attack", str(attack)]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = load_threshold("minifasnet-pair", "1", out)
    assert written.apcer_target == 0.05 and written.date
    assert PassiveThreshold.from_json(out.read_text()) == written
