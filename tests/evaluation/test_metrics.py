"""Tests of facekey.evaluation.metrics on synthetic scores with known answers."""

from __future__ import annotations

import json
import math
from itertools import combinations

import numpy as np
import pytest

from facekey.calibration import CalibrationTable
from facekey.errors import DatasetError
from facekey.evaluation.metrics import (
    CALIBRATION_FMR_LEVELS,
    accuracy_at,
    best_threshold,
    build_calibration,
    det_points,
    eer,
    fmr_reachable,
    fta_scores,
    genuine_scores_all_pairs,
    impostor_scores_all_pairs,
    kfold_accuracy,
    roc,
    split_scores,
    tar_at_far,
    threshold_at_fmr,
)

SEPARATED = (np.array([0.8, 0.9]), np.array([0.1, 0.2]))
INTERLEAVED = (np.array([0.5, 0.7]), np.array([0.4, 0.6]))


def _normal_scores(genuine: int, impostor: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.6, 0.1, genuine), rng.normal(0.0, 0.1, impostor)


# ----------------------------------------------------------------------- curves


def test_roc_known_values() -> None:
    thresholds, fmr, fnmr = roc(*INTERLEAVED)
    assert thresholds[:4].tolist() == [0.4, 0.5, 0.6, 0.7]
    assert thresholds[4] > 0.7
    assert fmr.tolist() == [1.0, 0.5, 0.5, 0.0, 0.0]
    assert fnmr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert fmr.dtype == np.float64


def test_eer_separated_is_zero() -> None:
    assert eer(*SEPARATED) == 0.0


def test_eer_interleaved() -> None:
    assert eer(*INTERLEAVED) == pytest.approx(0.5)


def test_eer_reversed_is_one() -> None:
    genuine, impostor = SEPARATED
    assert eer(impostor, genuine) == pytest.approx(1.0)


def test_eer_gaussian_matches_theory() -> None:
    genuine, impostor = _normal_scores(20_000, 20_000)
    # Both sigma 0.1, means 0.6 apart: EER = Phi(-3) = 0.00135
    assert eer(genuine, impostor) == pytest.approx(0.00135, abs=0.0006)


@pytest.mark.parametrize("seed", range(5))
def test_eer_matches_roc_crossing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    genuine = np.round(rng.normal(0.3, 0.2, 300), 2)  # rounding makes ties
    impostor = np.round(rng.normal(0.0, 0.2, 700), 2)
    _, fmr, fnmr = roc(genuine, impostor)
    diff = fmr - fnmr
    i = int(np.argmax(diff <= 0))
    alpha = diff[i - 1] / (diff[i - 1] - diff[i])
    assert eer(genuine, impostor) == pytest.approx(fmr[i - 1] + alpha * (fmr[i] - fmr[i - 1]))


def test_curves_reject_nan() -> None:
    with pytest.raises(ValueError, match="fta_scores"):
        eer([0.9, math.nan], [0.1])
    with pytest.raises(ValueError, match="no scores"):
        roc([], [0.1])


def test_threshold_at_fmr() -> None:
    impostor = np.arange(1, 101) / 100.0  # 0.01 .. 1.00
    threshold = threshold_at_fmr(impostor, 0.05)
    assert 0.95 < threshold < 0.9500001
    assert np.mean(impostor >= threshold) == pytest.approx(0.05)
    # the smallest: the next float down lets a sixth impostor through
    assert np.mean(impostor >= np.nextafter(threshold, -1.0)) > 0.05
    assert threshold_at_fmr(impostor, 1.0) == 0.01


def test_threshold_at_unreachable_fmr() -> None:
    impostor = np.arange(1, 101) / 100.0
    assert not fmr_reachable(1e-3, impostor.size)
    assert fmr_reachable(1e-2, impostor.size)
    threshold = threshold_at_fmr(impostor, 1e-3)
    assert threshold == np.nextafter(1.0, 2.0)


def test_tar_at_far() -> None:
    impostor = np.arange(1, 101) / 100.0
    genuine = np.array([0.5, 0.96, 0.97, 1.0])
    assert tar_at_far(genuine, impostor, 0.05) == pytest.approx(0.75)
    assert tar_at_far(genuine, impostor, 0.01) == pytest.approx(0.25)
    assert tar_at_far(genuine, impostor, 1e-4) == 0.0  # unreachable: above every impostor


def test_det_points_are_monotone() -> None:
    genuine, impostor = _normal_scores(1000, 100_000)
    thresholds, fmr, fnmr = det_points(genuine, impostor, max_points=200)
    assert thresholds.size <= 200
    assert np.all(np.diff(thresholds) > 0)
    assert np.all(np.diff(fmr) <= 0)
    assert np.all(np.diff(fnmr) >= 0)
    assert fmr.min() <= 1e-4


# ----------------------------------------------------------------------- accuracy


def test_accuracy_separated() -> None:
    threshold = best_threshold(*SEPARATED)
    assert threshold == pytest.approx(0.5)
    assert accuracy_at(*SEPARATED, threshold) == 1.0


def test_best_threshold_interleaved_takes_lowest_tie() -> None:
    threshold = best_threshold(*INTERLEAVED)
    assert threshold == pytest.approx(0.45)
    assert accuracy_at(*INTERLEAVED, threshold) == 0.75


def test_accuracy_at_threshold_is_inclusive() -> None:
    assert accuracy_at([0.5], [0.5], 0.5) == 0.5


def test_kfold_toy_case() -> None:
    scores = np.array([0.6, 0.7, 0.1, 0.2, 0.3, 0.9, 0.4, 0.0])
    same = np.array([True, True, False, False] * 2)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # fold 0: threshold 0.15 from fold 1 -> 3/4; fold 1: threshold 0.4 from fold 0 -> 2/4
    mean, std = kfold_accuracy(scores, same, folds)
    assert mean == pytest.approx(0.625)
    assert std == pytest.approx(0.125)


def test_kfold_separated_ten_folds() -> None:
    genuine, impostor = _normal_scores(300, 300)
    genuine += 1.0  # no overlap
    scores = np.concatenate([genuine, impostor])
    same = np.repeat([True, False], 300)
    folds = np.tile(np.arange(10), 60)
    assert kfold_accuracy(scores, same, folds) == (1.0, 0.0)


def test_kfold_needs_two_folds() -> None:
    with pytest.raises(ValueError, match="two folds"):
        kfold_accuracy([0.1, 0.9], [False, True], [0, 0])


# ----------------------------------------------------------------------- failure to acquire


def test_nan_pairs_are_always_wrong_for_accuracy() -> None:
    genuine = np.array([0.9, math.nan])
    impostor = np.array([0.1, math.nan])
    assert accuracy_at(genuine, impostor, 0.5) == 0.5
    assert best_threshold(genuine, impostor) == pytest.approx(0.5)


def test_fta_genuine_is_false_non_match() -> None:
    genuine = fta_scores([0.9, math.nan])
    assert genuine[1] == -np.inf
    impostor = np.arange(1, 101) / 200.0  # all below 0.9
    # GFNMR = FTA + (1 - FTA) * FNMR = 0.5 + 0.5 * 0
    assert tar_at_far(genuine, impostor, 1e-2) == 0.5
    assert eer(genuine, [0.1, 0.2]) == pytest.approx(0.5)


def test_fta_impostor_is_non_match_in_denominator() -> None:
    acquired = np.linspace(0.0, 0.99, 50)
    impostor = fta_scores(np.concatenate([np.full(50, math.nan), acquired]))
    genuine = np.array([1.0])
    _, fmr, _ = roc(genuine, impostor)
    _, fmr_acquired, _ = roc(genuine, acquired)
    # GFMR = (1 - FTA) * FMR at every finite threshold
    np.testing.assert_allclose(fmr[1:], 0.5 * fmr_acquired)


def test_split_scores() -> None:
    genuine, impostor = split_scores([0.1, 0.9, 0.2], [False, True, False])
    assert genuine.tolist() == [0.9]
    assert impostor.tolist() == [0.1, 0.2]
    with pytest.raises(ValueError, match="flags"):
        split_scores([0.1], [True, False])


# ----------------------------------------------------------------------- calibration


@pytest.fixture(scope="module")
def calibration() -> CalibrationTable:
    genuine, impostor = _normal_scores(5_000, 200_000, seed=1)
    return build_calibration(genuine, impostor, engine="fake", engine_version="1.0")


def test_calibration_points(calibration: CalibrationTable) -> None:
    fmrs = [p[1] for p in calibration.points]
    assert fmrs == [f for f in CALIBRATION_FMR_LEVELS if f >= 5e-6]
    assert calibration.min_fmr == pytest.approx(5e-6)
    assert calibration.impostor_pairs == 200_000
    assert calibration.genuine_pairs == 5_000


def test_calibration_thresholds_hold_on_data() -> None:
    genuine, impostor = _normal_scores(5_000, 200_000, seed=1)
    table = build_calibration(genuine, impostor, engine="fake", engine_version="1.0")
    for score, fmr, fnmr in table.points:
        assert np.mean(impostor >= score) <= fmr
        assert np.mean(genuine < score) == pytest.approx(fnmr)


def test_calibration_json_round_trip(calibration: CalibrationTable) -> None:
    text = calibration.to_json()
    assert json.loads(text)["format"] == 1
    assert CalibrationTable.from_json(text) == calibration


def test_calibration_is_monotone_and_positive(calibration: CalibrationTable) -> None:
    grid = np.linspace(-1.0, 1.0, 2001)
    values = np.array([calibration.fmr_at(float(s)) for s in grid])
    assert np.all(values > 0)
    assert np.all(np.diff(values) <= 0)
    assert values[0] == pytest.approx(0.1)
    assert values[-1] == pytest.approx(calibration.min_fmr)
    assert calibration.is_upper_bound(1.0)
    assert not calibration.is_upper_bound(0.0)


def test_calibration_inverse(calibration: CalibrationTable) -> None:
    for score, fmr, _ in calibration.points:
        assert calibration.fmr_at(score) == pytest.approx(fmr)
        assert calibration.threshold_for(fmr) == pytest.approx(score)
    between = calibration.threshold_for(3e-4)
    assert calibration.fmr_at(between) == pytest.approx(3e-4)
    assert calibration.threshold_for(0.5) == calibration.points[0][0]
    with pytest.raises(ValueError, match="below"):
        calibration.threshold_for(1e-7)


def test_calibration_few_impostors_has_floor_point() -> None:
    table = build_calibration([0.9], [0.1, 0.2, 0.3, 0.4, 0.5], engine="e", engine_version="v")
    assert len(table.points) == 1
    score, fmr, fnmr = table.points[0]
    assert score == np.nextafter(0.5, 1.0)
    assert fmr == pytest.approx(0.2)
    assert fnmr == 0.0
    assert table.fmr_at(0.99) == pytest.approx(0.2)


def test_calibration_tied_impostors() -> None:
    table = build_calibration([0.9], np.full(100, 0.3), engine="e", engine_version="v")
    assert table.points == ((float(np.nextafter(0.3, 1.0)), 0.01, 0.0),)


def test_calibration_rejects_bad_input() -> None:
    with pytest.raises(DatasetError, match="calibration"):
        CalibrationTable.from_json('{"format": 2}')
    with pytest.raises(DatasetError, match="calibration"):
        CalibrationTable.from_json("not json")
    with pytest.raises(ValueError, match="ascend"):
        CalibrationTable("e", "v", 10, 10, ((0.5, 0.1, 0.0), (0.4, 0.05, 0.1)))
    with pytest.raises(ValueError, match="at least one"):
        CalibrationTable("e", "v", 10, 10, ())


# ----------------------------------------------------------------------- all pairs


def _brute_force(embeddings: np.ndarray, labels: np.ndarray, same: bool) -> np.ndarray:
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return np.array(
        [
            unit[i] @ unit[j]
            for i, j in combinations(range(len(labels)), 2)
            if (labels[i] == labels[j]) == same
        ]
    )


def test_all_pairs_counts_and_values() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 7, size=53)
    embeddings = rng.normal(size=(53, 16)) * 3.0
    impostor = impostor_scores_all_pairs(embeddings, labels, chunk=8)
    genuine = genuine_scores_all_pairs(embeddings, labels, chunk=8)
    _, counts = np.unique(labels, return_counts=True)
    same_pairs = int(sum(c * (c - 1) // 2 for c in counts))
    assert genuine.size == same_pairs
    assert impostor.size == 53 * 52 // 2 - same_pairs
    assert impostor.dtype == np.float32
    np.testing.assert_allclose(
        np.sort(impostor), np.sort(_brute_force(embeddings, labels, False)), atol=1e-5
    )
    np.testing.assert_allclose(
        np.sort(genuine), np.sort(_brute_force(embeddings, labels, True)), atol=1e-5
    )


def test_all_pairs_small_known_case() -> None:
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    labels = np.array(["a", "a", "b", "b"])
    genuine = genuine_scores_all_pairs(embeddings, labels, chunk=3)
    impostor = impostor_scores_all_pairs(embeddings, labels, chunk=3)
    np.testing.assert_allclose(genuine, [0.0, -1 / math.sqrt(2)], atol=1e-6)
    np.testing.assert_allclose(
        np.sort(impostor), np.sort([1 / math.sqrt(2), -1.0, 1 / math.sqrt(2), 0.0]), atol=1e-6
    )


def test_all_pairs_rejects_bad_embeddings() -> None:
    with pytest.raises(ValueError, match="zero"):
        impostor_scores_all_pairs(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        impostor_scores_all_pairs(np.ones((2, 3)), np.array([0]))
    with pytest.raises(ValueError, match="NaN"):
        genuine_scores_all_pairs(np.full((2, 3), math.nan), np.array([0, 0]))
