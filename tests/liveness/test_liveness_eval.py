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
from facekey.evaluation.liveness_loso import (
    SPOOF_CAP,
    SideScores,
    SourceScores,
    fit_operating,
    leave_one_source_out,
    summary,
)
from facekey.liveness.fusion import Operating
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
    # the NUAA live frame scores 0.92, under the threshold chosen for security (0.94)
    assert report["bpcer"] == 0.5
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
    written = load_threshold("minifasnet-pair", "2", out)
    assert written.apcer_target == 0.05 and written.date
    assert PassiveThreshold.from_json(out.read_text()) == written


def _source(name: str, kind: str, live: list[float], attack: list[float]) -> SourceScores:
    return SourceScores(name, kind, SideScores.plain(live), SideScores.plain(attack))


def test_the_operating_point_holds_every_source_not_the_pooled_type() -> None:
    """Pooled, "screen" would allow one of 20 attacks through: the hard source's best one."""
    easy = _source("easy", "screen", [0.9] * 10, [0.01] * 19)
    hard = _source("hard", "screen", [0.9] * 10, [0.5])
    operating = fit_operating([easy, hard], 0.05)
    assert operating.live_at > 0.5
    assert operating.live_at == operating.spoof_at  # frames: live or not


def test_session_spoof_threshold_spares_live_sessions() -> None:
    """At most 1 % of live sessions fall to spoof, and only at a clearly low score."""
    sessions = [_source("a", "print", [0.02, 0.6, *[0.95] * 98], [0.7] * 50)]
    operating = fit_operating(sessions, 0.05, sessions=True)
    assert 0.7 < operating.live_at < 0.95
    assert operating.spoof_at == SPOOF_CAP  # the 1 % quantile (0.6) is capped
    assert sessions[0].live.outcomes(operating) == {"live": 98, "inconclusive": 1, "spoof": 1}
    low = [_source("b", "print", [0.01, 0.03, *[0.95] * 98], [0.7] * 50)]
    assert fit_operating(low, 0.05, sessions=True).spoof_at < 0.03


def test_leave_one_source_out_fits_without_the_held_out_source() -> None:
    """The held-out source's own attacks do not move its threshold: a new kind of attack
    that scores high is accepted in LOSO although fitting on everything would refuse it."""
    sources = [
        _source("a", "print", [0.9, 0.95], [0.1, 0.2]),
        _source("b", "phone", [0.8, 0.9], [0.3, 0.1]),
        _source("c", "recapture", [0.9, 0.99], [0.85, 0.85]),
    ]
    results = {r.source: r for r in leave_one_source_out(sources)}
    assert results["c"].attack["live"] == 2  # unseen, and above every other source's attacks
    assert results["a"].attack["live"] == 0
    report = summary(leave_one_source_out(sources))
    assert report["apcer_per_type"] == {"print": 0.0, "phone": 0.0, "recapture": 1.0}
    assert report["apcer"] == 1.0 and report["per_source"]["c"]["apcer"] == 1.0
    assert report["samples"]["live"] == 6


def test_gated_and_vetoed_sessions_are_never_live() -> None:
    side = SideScores(
        np.array([0.99, 0.99, 0.5, math.nan, 0.01]),
        np.array([False, True, False, False, False]),
        np.array([False, False, False, False, True]),
    )
    outcomes = side.outcomes(Operating(0.9, 0.1))
    assert outcomes == {"live": 1, "inconclusive": 3, "spoof": 1}


def test_eval_liveness_sources_reports_per_source_and_loso(tmp_path: Path) -> None:
    root = tmp_path / "sources"
    _copy(["nuaa-live-0001_00_00_01_0.jpg"], root / "nuaa" / "live")
    _copy(["nuaa-attack-0001_00_00_01_0.jpg"], root / "nuaa" / "print")
    _copy(["pad-image_T1.jpg"], root / "pad" / "live")
    _copy(["pad-image_F1.jpg"], root / "pad" / "photo")
    out = tmp_path / "out"
    args = ["eval", "liveness", "--sources", str(root), "--loso", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert all(key in report for key in REQUIRED)
    assert set(report["per_source"]) == {"nuaa", "pad"}
    assert set(report["apcer_per_type"]) == {"print", "photo"}
    assert set(report["loso"]["per_source"]) == {"nuaa", "pad"}
    assert report["loso"]["per_source"]["pad"]["attack_type"] == "photo"
    assert "Leave one source out" in (out / "report.md").read_text()


def test_eval_liveness_refuses_mixed_inputs(tmp_path: Path) -> None:
    live = _copy(["nuaa-live-0001_00_00_01_0.jpg"], tmp_path / "live")
    args = ["eval", "liveness", "--live", str(live), "--loso", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, [*args, "--attack", str(live)])
    assert result.exit_code != 0 and "--sources" in result.output


def test_gated_attacks_still_hold_the_threshold() -> None:
    """A high-scoring attack that a gate caught in its own source still sets the threshold."""
    gated = SideScores(np.array([0.95]), np.array([True]), np.array([False]))
    source = SourceScores("s", "phone", SideScores.plain([0.99]), gated)
    assert fit_operating([source], 0.05).live_at > 0.95
