"""Verification metrics on similarity scores (pure numpy).

Scores are cosine similarities of unit-length embeddings: higher means more similar, and a
pair is a *match* when ``score >= threshold``. ``genuine`` holds the scores of same-person
pairs, ``impostor`` those of different-person pairs.

Rates:

* FMR (false match rate) = fraction of impostor scores ``>= threshold``;
* FNMR (false non-match rate) = fraction of genuine scores ``< threshold``;
* TAR (true accept rate) = 1 - FNMR; FAR is used as a synonym of FMR.

Failure to acquire (FTA)
------------------------
A pair whose image yields no face has no score; callers mark it with NaN. Pairs whose image
yields no face count as errors:

* for accuracy (:func:`accuracy_at`, :func:`kfold_accuracy`) a NaN pair is always wrong,
  whether genuine or impostor;
* for error-rate curves (:func:`roc`, :func:`eer`, :func:`tar_at_far`, calibration) map NaN to
  ``-inf`` with :func:`fta_scores` first: a genuine NaN becomes a false non-match at every
  threshold and an impostor NaN a (correct) non-match that stays in the FMR denominator.
  These are the ISO/IEC 19795-1 *generalized* rates, ``GFNMR = FTA + (1 - FTA) * FNMR`` and
  ``GFMR = (1 - FTA) * FMR``. The curve functions reject NaN so the choice is always explicit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from facekey.calibration import UNMASKED, CalibrationTable, Condition

__all__ = [
    "CALIBRATION_FMR_LEVELS",
    "FloatArray",
    "accuracy_at",
    "best_threshold",
    "build_calibration",
    "det_points",
    "eer",
    "fmr_reachable",
    "fta_scores",
    "genuine_scores_all_pairs",
    "impostor_scores_all_pairs",
    "kfold_accuracy",
    "roc",
    "split_scores",
    "tar_at_far",
    "threshold_at_fmr",
    "thresholds_at_fmr",
]

FloatArray = npt.NDArray[np.float64]
"""A float64 numpy array."""

CALIBRATION_FMR_LEVELS: tuple[float, ...] = tuple(
    float(f"{m}e-{d}") for d in range(1, 8) for m in (5, 2, 1) if (m, d) not in ((5, 1), (2, 1))
)
"""The FMR levels :func:`build_calibration` places points at, descending: 1e-1, then 5, 2 and
1 per decade down to 1e-7."""

# --------------------------------------------------------------------------- helpers


def _scores(values: npt.ArrayLike, name: str, *, allow_nan: bool = False) -> FloatArray:
    """Return ``values`` as a 1-D float64 array; reject empty input and (unless allowed) NaN."""
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{name}: no scores")
    if not allow_nan and np.isnan(array).any():
        raise ValueError(f"{name}: NaN scores; map failed pairs with fta_scores() first")
    if np.isposinf(array).any():
        raise ValueError(f"{name}: +inf scores")
    return array


def fta_scores(scores: npt.ArrayLike) -> FloatArray:
    """Return a float64 copy of ``scores`` with NaN (failure to acquire) replaced by ``-inf``.

    Use it before the curve functions: a ``-inf`` score never matches, so a failed genuine
    pair is a false non-match and a failed impostor pair a non-match (ISO/IEC 19795-1
    generalized FNMR/FMR; see the module docstring).
    """
    array = np.array(scores, dtype=np.float64).ravel()
    array[np.isnan(array)] = -np.inf
    return array


def split_scores(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Split pair scores into (genuine, impostor) by the boolean ``same`` mask."""
    array = np.asarray(scores, dtype=np.float64).ravel()
    mask = np.asarray(same, dtype=np.bool_).ravel()
    if array.shape != mask.shape:
        raise ValueError(f"{array.size} scores but {mask.size} same/different flags")
    return array[mask], array[~mask]


def fmr_reachable(fmr: float, impostor_count: int) -> bool:
    """Return whether ``impostor_count`` impostor scores can measure an FMR of ``fmr``.

    With n impostors the smallest non-zero FMR is 1/n; a target below it is unreachable and
    :func:`threshold_at_fmr` then returns a threshold just above the highest impostor.
    """
    return impostor_count > 0 and fmr * impostor_count >= 1.0 - 1e-9


def _rates_at(
    sorted_genuine: FloatArray, sorted_impostor: FloatArray, thresholds: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Return (FMR, FNMR) at each threshold, from ascending-sorted scores."""
    false_matches = sorted_impostor.size - np.searchsorted(sorted_impostor, thresholds, "left")
    false_non_matches = np.searchsorted(sorted_genuine, thresholds, "left")
    fmr = false_matches.astype(np.float64) / sorted_impostor.size
    fnmr = false_non_matches.astype(np.float64) / sorted_genuine.size
    return fmr, fnmr


# --------------------------------------------------------------------------- curves


def roc(
    genuine: npt.ArrayLike, impostor: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (thresholds, FMR, FNMR) at every distinct score, plus one threshold above all.

    Thresholds ascend (FMR falls from 1 to 0, FNMR rises from 0 to 1); a score counts as a
    match when ``score >= threshold``. Scores may contain ``-inf`` (see :func:`fta_scores`)
    but not NaN. Memory is O(number of scores).
    """
    gen = np.sort(_scores(genuine, "genuine"))
    imp = np.sort(_scores(impostor, "impostor"))
    distinct = np.unique(np.concatenate([gen, imp]))
    above = np.nextafter(distinct[-1], np.inf)
    thresholds = np.append(distinct, above)
    fmr, fnmr = _rates_at(gen, imp, thresholds)
    return thresholds, fmr, fnmr


def eer(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> float:
    """Return the equal error rate.

    FMR and FNMR are step functions of the threshold; between the last threshold where
    FMR > FNMR and the first where FMR <= FNMR both are interpolated linearly and the EER is
    their common value where they cross. Perfectly separated scores give 0.0. The crossing is
    found by bisection, so this costs one sort (no full ROC is built).
    """
    gen = np.sort(_scores(genuine, "genuine"))
    imp = np.sort(_scores(impostor, "impostor"))
    values = np.sort(np.concatenate([gen, imp]), kind="stable")  # merges two sorted runs
    above = np.nextafter(values[-1], np.inf)
    i = _first_crossing(gen, imp, values)
    thresholds = np.array([values[max(i - 1, 0)], values[i] if i < values.size else above])
    fmr, fnmr = _rates_at(gen, imp, thresholds)
    diff = fmr - fnmr
    if i == 0 or diff[0] == diff[1]:
        return float(fmr[1])
    alpha = diff[0] / (diff[0] - diff[1])
    return float(fmr[0] + alpha * (fmr[1] - fmr[0]))


def _first_crossing(gen: FloatArray, imp: FloatArray, values: FloatArray) -> int:
    """Return the first index i of sorted ``values`` where FMR <= FNMR (``values.size``: none).

    FMR - FNMR only falls as the threshold rises, and equal values share it, so ``i`` starts a
    run of equal values and ``values[i - 1]`` is the previous distinct threshold.
    """
    lo, hi = 0, int(values.size)
    while lo < hi:
        mid = (lo + hi) // 2
        fmr, fnmr = _rates_at(gen, imp, values[mid : mid + 1])
        if fmr[0] <= fnmr[0]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def threshold_at_fmr(impostor: npt.ArrayLike, fmr: float) -> float:
    """Return the smallest threshold whose FMR is at most ``fmr``.

    With n impostor scores, k = floor(fmr * n) false matches are allowed and the threshold is
    the float just above the (k+1)-th highest impostor score. An FMR below 1/n is unreachable:
    the result is then the float just above the highest impostor score (measured FMR 0); use
    :func:`fmr_reachable` to flag it. ``fmr >= 1`` gives the lowest impostor score.
    """
    return thresholds_at_fmr(impostor, [fmr])[0]


def thresholds_at_fmr(impostor: npt.ArrayLike, fmrs: Sequence[float]) -> list[float]:
    """Return :func:`threshold_at_fmr` for several FMRs, sorting the impostor scores once."""
    ascending = np.sort(_scores(impostor, "impostor"))
    return [_threshold_sorted(ascending, fmr) for fmr in fmrs]


def _threshold_sorted(ascending: FloatArray, fmr: float) -> float:
    """Return :func:`threshold_at_fmr` from ascending-sorted impostor scores."""
    if not fmr > 0.0:
        raise ValueError(f"fmr must be positive, got {fmr}")
    allowed = math.floor(fmr * ascending.size * (1.0 + 1e-9))
    if allowed >= ascending.size:
        return float(ascending[0])
    return float(np.nextafter(ascending[ascending.size - 1 - allowed], np.inf))


def tar_at_far(genuine: npt.ArrayLike, impostor: npt.ArrayLike, far: float) -> float:
    """Return the true accept rate at :func:`threshold_at_fmr` ``(impostor, far)``.

    When ``far`` is unreachable (below 1/len(impostor)) this is the TAR at a threshold just
    above the highest impostor score; callers should flag it (:func:`fmr_reachable`).
    """
    gen = _scores(genuine, "genuine")
    threshold = threshold_at_fmr(impostor, far)
    return float(np.count_nonzero(gen >= threshold) / gen.size)


def det_points(
    genuine: npt.ArrayLike, impostor: npt.ArrayLike, max_points: int = 1000
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (thresholds, FMR, FNMR) at about ``max_points`` thresholds, for plotting.

    The thresholds are order statistics of both score sets at log-spaced ranks, so the curve
    is resolved evenly on log-log (DET) axes even with millions of impostor scores.
    """
    gen = np.sort(_scores(genuine, "genuine"))
    imp = np.sort(_scores(impostor, "impostor"))
    half = max(2, max_points // 2)
    imp_ranks = np.unique(np.geomspace(1, imp.size, half).astype(np.int64))
    gen_ranks = np.unique(np.geomspace(1, gen.size, half).astype(np.int64))
    candidates = np.concatenate([imp[imp.size - imp_ranks], gen[gen_ranks - 1]])
    thresholds = np.unique(candidates[np.isfinite(candidates)])
    if thresholds.size == 0:
        thresholds = np.array([0.0])
    fmr, fnmr = _rates_at(gen, imp, thresholds)
    return thresholds, fmr, fnmr


# --------------------------------------------------------------------------- accuracy


def accuracy_at(genuine: npt.ArrayLike, impostor: npt.ArrayLike, threshold: float) -> float:
    """Return the fraction of pairs classified correctly at ``threshold``.

    A genuine pair is correct when ``score >= threshold``, an impostor pair when
    ``score < threshold``. NaN scores (failure to acquire) are always wrong.
    """
    gen = np.asarray(genuine, dtype=np.float64).ravel()
    imp = np.asarray(impostor, dtype=np.float64).ravel()
    total = gen.size + imp.size
    if total == 0:
        raise ValueError("no scores")
    correct = np.count_nonzero(gen >= threshold) + np.count_nonzero(imp < threshold)
    return float(correct / total)


def best_threshold(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> float:
    """Return the threshold that maximises :func:`accuracy_at` on these scores.

    Candidates are the lowest finite score (everything matches), the midpoints between
    adjacent distinct finite scores and the float just above the highest (nothing matches);
    ties go to the lowest candidate. NaN scores are always wrong and do not move the result.
    """
    gen = np.asarray(genuine, dtype=np.float64).ravel()
    imp = np.asarray(impostor, dtype=np.float64).ravel()
    both = np.concatenate([gen, imp])
    distinct = np.unique(both[np.isfinite(both)])
    if distinct.size == 0:
        raise ValueError("no finite scores")
    midpoints = distinct[:-1] + (distinct[1:] - distinct[:-1]) / 2.0
    above = np.nextafter(distinct[-1], np.inf)
    candidates = np.concatenate([distinct[:1], midpoints, [above]])
    gen_sorted = np.sort(gen[~np.isnan(gen)])
    imp_sorted = np.sort(imp[~np.isnan(imp)])
    accepted = gen_sorted.size - np.searchsorted(gen_sorted, candidates, "left")
    rejected = np.searchsorted(imp_sorted, candidates, "left")
    return float(candidates[int(np.argmax(accepted + rejected))])


def kfold_accuracy(
    scores: npt.ArrayLike, same: npt.ArrayLike, folds: npt.ArrayLike
) -> tuple[float, float]:
    """Return (mean, std) of the LFW cross-validated accuracy.

    For each fold k, the threshold is :func:`best_threshold` on the pairs of all other folds,
    and the accuracy is measured on fold k. ``std`` is the population standard deviation
    over folds (``ddof=0``); LFW's "standard error" is ``std / sqrt(folds)``. NaN scores are
    always wrong. Needs at least two folds.
    """
    array = np.asarray(scores, dtype=np.float64).ravel()
    mask = np.asarray(same, dtype=np.bool_).ravel()
    fold_ids = np.asarray(folds).ravel()
    if not array.shape == mask.shape == fold_ids.shape:
        raise ValueError("scores, same and folds must have the same length")
    names = np.unique(fold_ids)
    if names.size < 2:
        raise ValueError("k-fold accuracy needs at least two folds")
    accuracies = [_fold_accuracy(array, mask, fold_ids == name) for name in names]
    return float(np.mean(accuracies)), float(np.std(accuracies))


def _fold_accuracy(
    scores: FloatArray, same: npt.NDArray[np.bool_], test: npt.NDArray[np.bool_]
) -> float:
    """Return the accuracy on ``test`` at the best threshold of the other pairs."""
    train = ~test
    threshold = best_threshold(scores[train & same], scores[train & ~same])
    return accuracy_at(scores[test & same], scores[test & ~same], threshold)


# --------------------------------------------------------------------------- calibration


def _calibration_candidates(imp: FloatArray) -> Iterator[tuple[float, float]]:
    """Yield (threshold, fmr bound) for each reachable level, then the resolution floor.

    ``imp`` must be sorted ascending.
    """
    for level in CALIBRATION_FMR_LEVELS:
        if fmr_reachable(level, imp.size):
            yield _threshold_sorted(imp, level), level
    yield float(np.nextafter(imp[-1], np.inf)), 1.0 / imp.size


def build_calibration(
    genuine: npt.ArrayLike,
    impostor: npt.ArrayLike,
    *,
    engine: str,
    engine_version: str,
    condition: Condition = UNMASKED,
) -> CalibrationTable:
    """Measure a :class:`CalibrationTable` from genuine and impostor scores.

    Points sit at the thresholds of :data:`CALIBRATION_FMR_LEVELS` that the impostor count
    can reach (an FMR of f needs at least 1/f impostor scores), plus a last point just above
    the highest impostor score with FMR ``1 / len(impostor)`` (an upper bound: its measured
    FMR is 0). Each point's FMR is the level, an upper bound of the measured FMR at its
    threshold; points whose threshold or FMR repeats keep the stronger statement. Map
    failures with :func:`fta_scores` first; NaN is rejected.
    """
    gen = np.sort(_scores(genuine, "genuine"))
    imp = np.sort(_scores(impostor, "impostor"))
    if not np.isfinite(imp).any():
        raise ValueError("impostor: no finite scores")
    points: list[tuple[float, float, float]] = []
    for threshold, fmr in _calibration_candidates(imp):
        _, fnmr = _rates_at(gen, imp, np.array([threshold]))
        point = (threshold, fmr, float(fnmr[0]))
        if points and threshold <= points[-1][0]:
            points[-1] = point  # same threshold, lower FMR bound: keep the lower
        elif not points or fmr < points[-1][1]:
            points.append(point)
    return CalibrationTable(
        engine=engine,
        engine_version=engine_version,
        impostor_pairs=int(imp.size),
        genuine_pairs=int(gen.size),
        points=tuple(points),
        condition=condition,
    )


# --------------------------------------------------------------------------- all pairs


def _unit_rows(embeddings: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Return the embeddings as float32 rows of unit length."""
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, dim), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("embeddings contain NaN or inf; drop failed images first")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("embeddings contain a zero vector")
    return np.asarray(array / norms, dtype=np.float32)


def _blocks(n: int, chunk: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (row start, row end, col start, col end) of the upper-triangle blocks."""
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    for a in range(0, n, chunk):
        for c in range(a, n, chunk):
            yield a, min(a + chunk, n), c, min(c + chunk, n)


def _pair_count(labels: npt.NDArray[Any], same: bool) -> int:
    """Return how many i<j pairs have equal (``same``) or different labels."""
    _, counts = np.unique(labels, return_counts=True)
    same_pairs = int(np.sum(counts.astype(np.int64) * (counts - 1) // 2))
    total = labels.size * (labels.size - 1) // 2
    return same_pairs if same else total - same_pairs


def _all_pairs(
    embeddings: npt.ArrayLike, labels: npt.ArrayLike, chunk: int, same: bool
) -> npt.NDArray[np.float32]:
    """Return cosine scores of all i<j pairs whose labels are equal (``same``) or differ."""
    unit = _unit_rows(embeddings)
    label_array = np.asarray(labels).ravel()
    if label_array.size != unit.shape[0]:
        raise ValueError(f"{unit.shape[0]} embeddings but {label_array.size} labels")
    out = np.empty(_pair_count(label_array, same), dtype=np.float32)
    filled = 0
    for a, b, c, d in _blocks(unit.shape[0], chunk):
        keep = (label_array[a:b, None] == label_array[None, c:d]) == same
        if a == c:
            keep &= np.triu(np.ones((b - a, d - c), dtype=np.bool_), k=1)
        block = (unit[a:b] @ unit[c:d].T)[keep]
        out[filled : filled + block.size] = block
        filled += block.size
    return out


def impostor_scores_all_pairs(
    embeddings: npt.ArrayLike, labels: npt.ArrayLike, chunk: int = 2048
) -> npt.NDArray[np.float32]:
    """Return the cosine scores of ALL different-label pairs i<j, as float32.

    ``embeddings`` is (n, dim) (rows are normalised here), ``labels`` the n identities.
    Computed in ``chunk x chunk`` blocks, so memory is the output plus one block; the output
    has ``n(n-1)/2 - sum C(n_label, 2)`` scores (about 12M for LFW View 1's ~5000 images:
    ~50 MB), in row-major (i, j) order within blocks. Embeddings must be finite and non-zero:
    drop images that failed.
    """
    return _all_pairs(embeddings, labels, chunk, same=False)


def genuine_scores_all_pairs(
    embeddings: npt.ArrayLike, labels: npt.ArrayLike, chunk: int = 2048
) -> npt.NDArray[np.float32]:
    """Return the cosine scores of ALL same-label pairs i<j, as float32.

    Same conventions as :func:`impostor_scores_all_pairs`; the output has
    ``sum C(n_label, 2)`` scores.
    """
    return _all_pairs(embeddings, labels, chunk, same=True)
