"""Challenge verification over pose / eye-openness trajectories: synthetic and real frames."""

from __future__ import annotations

import math
import secrets
from pathlib import Path

import numpy as np
import pytest

from facekey.evaluation.liveness_sessions import moved_still
from facekey.imaging import read_image_file
from facekey.liveness.challenges import (
    CHALLENGES,
    LOOK_UP_DEGREES,
    TURN_DEGREES,
    PoseSample,
    find_blink,
    find_excursion,
    parse_challenges,
    pose_samples,
    random_challenges,
    verify_challenges,
)
from facekey.liveness.session import LivenessChecker

FIXTURES = Path(__file__).parents[1] / "fixtures" / "liveness"
TURN_THEN_LOOK_UP = sorted(FIXTURES.glob("turn-then-look-up-*.jpg"))
SMALL_MOVES = sorted(FIXTURES.glob("head-turn-*.jpg"))


def _samples(yaw: list[float], pitch: list[float] | None = None, ear: list[float] | None = None):
    pitch = pitch or [0.0] * len(yaw)
    ear = ear or [0.3] * len(yaw)
    return [PoseSample(y, p, e) for y, p, e in zip(yaw, pitch, ear, strict=True)]


# ---------------------------------------------------------------------- synthetic


def test_turn_left_raises_yaw_turn_right_lowers_it() -> None:
    left = _samples([0, 5, 12, 20, 25])
    assert [o.passed for o in verify_challenges(["turn_left"], left)] == [True]
    assert [o.passed for o in verify_challenges(["turn_right"], left)] == [False]
    right = _samples([0, -8, -18, -22])
    outcome = verify_challenges(["turn_right"], right)[0]
    assert outcome.passed and outcome.frame == 2 and outcome.amount >= TURN_DEGREES


def test_a_small_turn_is_not_enough() -> None:
    jitter = _samples([0, 4, -3, 6, TURN_DEGREES - 5, 1])
    assert not any(o.passed for o in verify_challenges(["turn_left", "turn_right"], jitter))


def test_challenges_must_come_in_order() -> None:
    # turn left, then back through the centre to the right
    yaw = [0, 10, 20, 10, 0, -10, -20]
    samples = _samples([float(y) for y in yaw])
    assert all(o.passed for o in verify_challenges(["turn_left", "turn_right"], samples))
    reversed_order = verify_challenges(["turn_right", "turn_left"], samples)
    assert [o.passed for o in reversed_order] == [True, False]  # right comes last: nothing after


def test_look_up_is_measured_from_the_previous_challenge() -> None:
    pitch = [0.0, -10.0, -15.0, 0.0, LOOK_UP_DEGREES + 2]
    samples = _samples([0.0] * 5, pitch)
    outcome = verify_challenges(["look_up"], samples)[0]
    assert outcome.passed and outcome.frame == 4
    # looking down and back to where the head started is not a look-up
    down_and_back = _samples([0.0] * 4, [0.0, -15.0, -15.0, 0.0])
    assert not verify_challenges(["look_up"], down_and_back)[0].passed


def test_blink_needs_open_closed_open() -> None:
    blink = [0.32, 0.31, 0.12, 0.08, 0.3, 0.33]
    frame, dip = find_blink(blink, 0)
    assert frame == 4 and dip < 0.4
    assert find_blink([0.32, 0.31, 0.12, 0.08], 0)[0] is None  # never reopened
    assert find_blink([0.3, 0.31, 0.29, 0.3], 0)[0] is None  # never closed
    samples = _samples([0.0] * 6, ear=blink)
    assert verify_challenges(["blink"], samples)[0].passed


def test_a_missed_challenge_fails_the_ones_after_it() -> None:
    samples = _samples([0.0, 1.0, 2.0, 1.0])
    outcomes = verify_challenges(["look_up", "turn_left", "blink"], samples)
    assert [o.passed for o in outcomes] == [False, False, False]
    assert [o.frame for o in outcomes] == [None, None, None]


def test_excursion_reports_the_best_rise_when_it_fails() -> None:
    frame, best = find_excursion([0.0, 5.0, 2.0, 9.0], 0, 15.0)
    assert frame is None and best == pytest.approx(9.0)
    assert find_excursion([1.0], 3, 15.0) == (None, 0.0)


def test_random_challenges_are_two_or_three_distinct() -> None:
    rng = secrets.SystemRandom()
    seen = set()
    for _ in range(200):
        chosen = random_challenges(rng)
        assert 2 <= len(chosen) <= 3
        assert len(set(chosen)) == len(chosen)
        assert set(chosen) <= set(CHALLENGES)
        seen.add(chosen)
    assert len(seen) > 10


def test_parse_challenges_refuses_unknown_and_repeated() -> None:
    assert parse_challenges(["blink", "look_up"]) == ("blink", "look_up")
    with pytest.raises(ValueError, match="distinct"):
        parse_challenges(["blink", "blink"])
    with pytest.raises(ValueError, match="distinct"):
        parse_challenges(["smile"])


# ---------------------------------------------------------------------- real frames


@pytest.fixture(scope="module")
def checker() -> LivenessChecker:
    return LivenessChecker()


def _real_samples(checker: LivenessChecker, frames: list[np.ndarray]) -> list[PoseSample]:
    observations = [checker.observe(frame) for frame in frames]
    assert all(o is not None for o in observations)
    return pose_samples([o for o in observations if o is not None])


def test_real_head_turn_passes_the_turn_it_contains(checker: LivenessChecker) -> None:
    assert len(TURN_THEN_LOOK_UP) == 6
    samples = _real_samples(checker, [read_image_file(p) for p in TURN_THEN_LOOK_UP])
    outcomes = verify_challenges(["turn_right", "look_up"], samples)
    assert [o.passed for o in outcomes] == [True, True]
    assert outcomes[0].amount > 25  # the subject turns ~35° towards the camera
    assert not verify_challenges(["turn_left"], samples)[0].passed
    assert [o.passed for o in verify_challenges(["look_up", "turn_right"], samples)] == [
        True,
        False,
    ]


def test_small_real_movements_pass_no_turn(checker: LivenessChecker) -> None:
    samples = _real_samples(checker, [read_image_file(p) for p in SMALL_MOVES])
    for challenge in ("turn_left", "turn_right", "look_up", "blink"):
        assert not verify_challenges([challenge], samples)[0].passed, challenge


@pytest.mark.parametrize("name", ["nuaa-live-0001_00_00_01_0.jpg", "pad-image_T1.jpg"])
def test_a_moved_still_performs_no_challenge(checker: LivenessChecker, name: str) -> None:
    still = read_image_file(FIXTURES / name)
    frames = moved_still(still, 8, np.random.default_rng(11))
    samples = _real_samples(checker, frames)
    for challenge in CHALLENGES:
        assert not verify_challenges([challenge], samples)[0].passed, challenge
    assert max(s.yaw for s in samples) - min(s.yaw for s in samples) < TURN_DEGREES
    assert math.isfinite(samples[0].ear)
