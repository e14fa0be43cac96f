"""Passive bursts: the fusion's three outcomes and gates on synthetic bursts; real frames."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from facekey.evaluation.liveness_sessions import moved_still, static_still
from facekey.imaging import read_image_file
from facekey.liveness.fusion import (
    FUSION_VERSION,
    Operating,
    decide_session,
    passive_log_odds,
    result_of,
)
from facekey.liveness.session import BoxFromMesh, LivenessChecker, pick_frames
from facekey.liveness.temporal import FrameObservation, fit_homography, homography_residual
from facekey.liveness.thermal import ThermalEvidence
from facekey.vision.types import Box

FIXTURES = Path(__file__).parents[1] / "fixtures" / "liveness"
OPERATING = Operating(live_at=0.9, spoof_at=0.1)


@pytest.fixture(scope="module")
def checker() -> LivenessChecker:
    return LivenessChecker()


def _face(rng: np.random.Generator) -> np.ndarray:
    """468 points of a rough 3-D head (an ellipsoid cap), 100 px across, around (200, 200)."""
    angles = rng.uniform(0, 2 * np.pi, 468)
    radius = np.sqrt(rng.uniform(0, 1, 468))
    x, y = 50 * radius * np.cos(angles), 60 * radius * np.sin(angles)
    z = -40 * np.sqrt(np.clip(1 - radius**2, 0, 1))
    return np.column_stack([x, y, z])


def _burst(kind: str, passive: list[float], seed: int = 0) -> list[FrameObservation]:
    """Frames of a head that turns (3-D: not a plane), slides as a plane, or stays still."""
    rng = np.random.default_rng(seed)
    head = _face(rng)
    out = []
    for index, score in enumerate(passive):
        if kind == "turn":
            angle = math.radians(4.0 * index)
            x = head[:, 0] * math.cos(angle) + head[:, 2] * math.sin(angle)
            points = np.column_stack([x + 200, head[:, 1] + 200, head[:, 2]])
        elif kind == "slide":
            points = np.column_stack([head[:, 0] + 200 + 6 * index, head[:, 1] + 200, head[:, 2]])
        else:
            points = head + np.array([200.0, 200.0, 0.0]) + rng.normal(0, 0.05, head.shape)
        out.append(FrameObservation(Box(150, 140, 250, 260), points.astype(np.float32), score))
    return out


def test_passive_score_is_the_mean_log_odds() -> None:
    assert passive_log_odds([0.5, 0.5]) == pytest.approx(0.0)
    assert passive_log_odds([0.9, math.nan]) == pytest.approx(math.log(9))
    assert passive_log_odds([math.nan]) < -7


@pytest.mark.parametrize(
    ("score", "result"), [(0.95, "live"), (0.9, "live"), (0.5, "inconclusive"), (0.1, "spoof")]
)
def test_three_outcomes(score: float, result: str) -> None:
    assert result_of(score, OPERATING) == result


def test_a_gate_keeps_a_high_score_from_being_live() -> None:
    assert result_of(0.99, OPERATING, gate="still") == "inconclusive"
    assert result_of(0.05, OPERATING, gate="still") == "spoof"


def test_a_turning_head_with_high_scores_is_live() -> None:
    decision = decide_session(_burst("turn", [0.99] * 8), OPERATING)
    assert decision.result == "live", decision.evidence
    assert decision.evidence["fusion_version"] == FUSION_VERSION
    assert not decision.evidence["gated"]


def test_low_scores_are_spoof_and_middling_ones_inconclusive() -> None:
    assert decide_session(_burst("turn", [0.01] * 8), OPERATING).result == "spoof"
    assert decide_session(_burst("turn", [0.6] * 8), OPERATING).result == "inconclusive"


@pytest.mark.parametrize(("kind", "words"), [("still", "did not move"), ("slide", "one plane")])
def test_still_or_planar_bursts_are_never_live(kind: str, words: str) -> None:
    decision = decide_session(_burst(kind, [0.999] * 8), OPERATING)
    assert decision.result == "inconclusive"
    assert words in decision.evidence["reason"] and decision.evidence["gated"]


def test_thermal_spoof_vetoes_and_warm_skin_adds_evidence() -> None:
    burst = _burst("turn", [0.8] * 8)
    paper = ThermalEvidence(23.0, 22.5, 0.5, "spoof")
    skin = ThermalEvidence(34.0, 24.0, 10.0, "live")
    assert decide_session(burst, OPERATING).result == "inconclusive"
    assert decide_session(burst, OPERATING, paper).result == "spoof"
    assert decide_session(burst, OPERATING, skin).result == "live"


def test_pick_frames_spreads_over_the_burst_and_takes_the_sharpest() -> None:
    qualities = [1.0, 5.0, 2.0, math.nan, 3.0, 1.0, 9.0, 0.5, 4.0, 2.0]
    picked = pick_frames(qualities, 3)
    assert picked == [1, 6, 8]
    assert pick_frames([1.0, math.nan, 2.0], 6) == [0, 2]


def test_box_from_mesh_carries_the_detector_box() -> None:
    relation = BoxFromMesh.measure(Box(10, 20, 110, 140), Box(20, 10, 100, 150))
    moved = relation.apply(Box(120, 10, 200, 150))
    assert (moved.left, moved.top, moved.right, moved.bottom) == pytest.approx((110, 20, 210, 140))


def test_real_head_turn_is_not_spoof(checker: LivenessChecker) -> None:
    frames = [read_image_file(p) for p in sorted(FIXTURES.glob("head-turn-*.jpg"))]
    decision = checker.check(frames)
    assert decision.result != "spoof"
    assert decision.evidence["fusion_version"] == FUSION_VERSION
    assert decision.evidence["scored_frames"] == len(frames)


@pytest.mark.parametrize("name", ["nuaa-live-0001_00_00_01_0.jpg", "pad-image_T1.jpg"])
@pytest.mark.parametrize("make", [moved_still, static_still])
def test_one_still_moved_or_static_is_not_live(
    checker: LivenessChecker, name: str, make: object
) -> None:
    still = read_image_file(FIXTURES / name)
    frames = make(still, 8, np.random.default_rng(3))  # type: ignore[operator]
    assert checker.check(frames).result != "live"


def test_a_burst_scores_a_subset_and_tracks_every_frame(checker: LivenessChecker) -> None:
    still = read_image_file(FIXTURES / "nuaa-live-0001_00_00_01_0.jpg")
    frames = moved_still(still, 20, np.random.default_rng(1))
    observed = checker.observe_burst(frames)
    assert all(o is not None for o in observed)
    scored = [o for o in observed if o is not None and not math.isnan(o.passive)]
    assert len(scored) == 6


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
    corners = fit_homography(source[:4], target[:4])  # four points: exactly determined
    assert np.allclose(corners / corners[2, 2], matrix, atol=1e-6)


def test_thermal_frame_of_paper_turns_a_head_turn_to_spoof(checker: LivenessChecker) -> None:
    frames = [read_image_file(p) for p in sorted(FIXTURES.glob("head-turn-*.jpg"))]
    ambient = np.full(frames[-1].shape[:2], 22.0, dtype=np.float32)
    decision = checker.check(frames, thermal=ambient)
    assert decision.result == "spoof"
    assert decision.evidence["thermal"]["vote"] == "spoof"
