"""Passive sessions: a moved or static still is not live; a real head turn is not spoof."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facekey.evaluation.liveness_sessions import moved_still, static_still
from facekey.imaging import read_image_file
from facekey.liveness.fusion import FUSION_VERSION, decide_session, fit_logistic
from facekey.liveness.session import LivenessChecker
from facekey.liveness.temporal import TemporalFeatures, fit_homography, homography_residual
from facekey.liveness.thermal import ThermalEvidence

FIXTURES = Path(__file__).parents[1] / "fixtures" / "liveness"


@pytest.fixture(scope="module")
def checker() -> LivenessChecker:
    return LivenessChecker()


def test_real_head_turn_is_not_spoof(checker: LivenessChecker) -> None:
    frames = [read_image_file(p) for p in sorted(FIXTURES.glob("head-turn-*.jpg"))]
    decision = checker.check(frames)
    assert decision.result != "spoof"
    assert decision.evidence["fusion_version"] == FUSION_VERSION


@pytest.mark.parametrize("name", ["nuaa-live-0001_00_00_01_0.jpg", "pad-image_T1.jpg"])
@pytest.mark.parametrize("make", [moved_still, static_still])
def test_one_still_moved_or_static_is_not_live(
    checker: LivenessChecker, name: str, make: object
) -> None:
    still = read_image_file(FIXTURES / name)
    frames = make(still, 8, np.random.default_rng(3))  # type: ignore[operator]
    assert checker.check(frames).result != "live"


def test_too_few_faces_is_inconclusive(checker: LivenessChecker) -> None:
    blank = np.zeros((240, 320, 3), dtype=np.uint8)
    decision = checker.check([blank] * 4)
    assert decision.result == "inconclusive"
    assert "reason" in decision.evidence


def test_homography_fits_a_plane_exactly() -> None:
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (50, 2))
    matrix = np.array([[1.1, 0.05, 3.0], [-0.02, 0.95, -2.0], [1e-4, -2e-4, 1.0]])
    mapped = np.column_stack([source, np.ones(50)]) @ matrix.T
    target = mapped[:, :2] / mapped[:, 2:]
    assert homography_residual(source, target) < 1e-6
    fitted = fit_homography(source, target)
    assert np.allclose(fitted / fitted[2, 2], matrix, atol=1e-6)


def _features(passive: float, nonplanarity: float, motion: float) -> TemporalFeatures:
    return TemporalFeatures(8, passive, passive, motion, nonplanarity, False, 1.0)


def test_thermal_spoof_vote_vetoes_a_live_burst() -> None:
    live = _features(0.99, 0.04, 0.03)
    assert decide_session(live).result == "live"
    paper = ThermalEvidence(23.0, 22.5, 0.5, "spoof")
    assert decide_session(live, paper).result == "spoof"


def test_fit_logistic_separates_separable_rows() -> None:
    rows = [_features(0.99, 0.04, 0.03)] * 5 + [_features(0.01, 0.003, 0.2)] * 5
    weights = fit_logistic(rows, [True] * 5 + [False] * 5)
    assert decide_session(rows[0], weights=weights).score > 0.9
    assert decide_session(rows[-1], weights=weights).score < 0.1


def test_thermal_frame_of_paper_turns_a_head_turn_to_spoof(checker: LivenessChecker) -> None:
    frames = [read_image_file(p) for p in sorted(FIXTURES.glob("head-turn-*.jpg"))]
    ambient = np.full(frames[-1].shape[:2], 22.0, dtype=np.float32)
    decision = checker.check(frames, thermal=ambient)
    assert decision.result == "spoof"
    assert decision.evidence["thermal"]["vote"] == "spoof"
