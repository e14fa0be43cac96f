"""Photometric planarity: a plane (however tilted) agrees with itself; parallax does not."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from facekey.evaluation.liveness_sessions import _perspective, tilted_still
from facekey.imaging import read_image_file
from facekey.liveness.challenges import pose_samples
from facekey.liveness.photometric import (
    MIN_POSE_CHANGE,
    PLANAR_AGREEMENT,
    convex_hull,
    photometric_evidence,
    planar_agreement,
)
from facekey.liveness.session import LivenessChecker
from facekey.liveness.temporal import fit_homography

FIXTURES = Path(__file__).parents[1] / "fixtures"
TURN_THEN_LOOK_UP = sorted((FIXTURES / "liveness").glob("turn-then-look-up-*.jpg"))
#: Fixture stills whose tilt (0→60°) makes the mesh pose change by ≥ 12°.
TILTED = [
    ("lfw/Aaron_Sorkin_0001.jpg", "vertical"),
    ("liveness/nuaa-attack-0001_00_00_01_0.jpg", "horizontal"),
    ("liveness/pad-image_T1.jpg", "horizontal"),
]


def _texture(size: int = 240, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (size // 8, size // 8))
    big = np.kron(small, np.ones((8, 8)))
    return np.repeat(big[:, :, None], 3, axis=2).astype(np.uint8)


def _points(size: int = 240) -> np.ndarray:
    """A 468-point cloud over the middle of the image; the eye corners 60 px apart."""
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(60, 180, (468, 2)), np.zeros(468)])
    points[33, :2], points[263, :2] = (90, 110), (150, 110)
    return points.astype(np.float32)


def _mapped(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    moved = np.column_stack([points[:, :2], np.ones(len(points))]) @ matrix.T
    out = points.copy()
    out[:, :2] = moved[:, :2] / moved[:, 2:3]
    return out


def test_a_tilted_plane_agrees_with_itself() -> None:
    image = _texture()
    tilted = _perspective(image, math.radians(35), True, 1.02, (0.01, -0.01))
    corners = np.array([[0, 0], [240, 0], [240, 240], [0, 240]], dtype=np.float32)
    forward = _tilt_matrix(corners)  # where the tilt sends the image's corners
    points = _points()
    # landmarks off by ~1 px, as a mesh fitted to a photo
    noisy = _mapped(points, forward)
    noisy[:, :2] += np.random.default_rng(2).normal(0, 1.0, (468, 2))
    assert planar_agreement(image, points, tilted, noisy) >= PLANAR_AGREEMENT


def _tilt_matrix(corners: np.ndarray) -> np.ndarray:
    width = 240.0
    focal, centre = 1.2 * width, width / 2
    across, along = corners[:, 0] - centre, corners[:, 1] - centre
    angle = math.radians(35)
    depth = focal + across * math.sin(angle)
    x = focal * across * math.cos(angle) / depth * 1.02 + centre + 0.01 * width
    y = focal * along / depth * 1.02 + centre - 0.01 * width
    return fit_homography(corners, np.column_stack([x, y]).astype(np.float32))


def test_parallax_does_not_agree() -> None:
    """A near layer (the middle) moves 6 px against a far one: no homography fits both."""
    image = _texture()
    moved = image.copy()
    moved[:, 6:] = image[:, :-6]
    moved[80:160, 92:172] = image[80:160, 80:160]  # the near layer moves 12 px instead
    points = _points()
    shifted = points.copy()
    shifted[:, 0] += 6
    assert planar_agreement(image, points, moved, shifted) < PLANAR_AGREEMENT


def test_convex_hull_of_a_square_and_its_inside() -> None:
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5], [0.2, 0.7]])
    hull = convex_hull(square)
    assert len(hull) == 4 and {tuple(p) for p in hull} == {(0, 0), (1, 0), (1, 1), (0, 1)}


@pytest.fixture(scope="module")
def checker() -> LivenessChecker:
    return LivenessChecker()


@pytest.mark.parametrize(("name", "axis"), TILTED)
def test_a_tilted_still_is_planar(checker: LivenessChecker, name: str, axis: str) -> None:
    frames = tilted_still(read_image_file(FIXTURES / name), 8, np.random.default_rng(5), axis, 60)
    observations = [checker.observe(f) for f in frames]
    assert all(o is not None for o in observations)
    found = [o for o in observations if o is not None]
    evidence = photometric_evidence(frames, found)
    assert evidence is not None and evidence.pose_change >= MIN_POSE_CHANGE
    assert evidence.planar, evidence
    observed = checker.observe_burst(frames, track=False)
    decision = checker.decide(frames, observed, thorough=True)  # as a challenge does
    assert decision.result == "spoof"
    if "photometric" in decision.evidence:
        assert "plane" in decision.evidence["reason"]
    else:  # a printed photo: the passive score is already spoof; the veto is not needed
        assert decision.score <= checker.operating.spoof_at
    assert checker.check(frames).result != "live"  # passive: never live


def test_a_real_head_turn_is_not_planar(checker: LivenessChecker) -> None:
    frames = [read_image_file(p) for p in TURN_THEN_LOOK_UP]
    found = [o for o in (checker.observe(f) for f in frames) if o is not None]
    assert len(found) == len(frames)
    evidence = photometric_evidence(frames, found)
    assert evidence is not None and evidence.pose_change > 25
    assert not evidence.planar and evidence.agreement < PLANAR_AGREEMENT - 0.05, evidence
    assert max(s.yaw for s in pose_samples(found)) > 25
