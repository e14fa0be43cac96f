"""Scores to decisions through the engine's calibration table."""

from __future__ import annotations

from facekey.calibration import CalibrationTable


def fmr_of(table: CalibrationTable | None, score: float) -> float | None:
    """The calibrated false-match rate at ``score`` (None without a calibration)."""
    return None if table is None else table.fmr_at(score)


def meets(table: CalibrationTable | None, score: float, fmr_target: float) -> bool:
    """Whether ``score`` is at or above the calibrated threshold for ``fmr_target``.

    A target below what the calibration can vouch for uses its strictest threshold.
    """
    if table is None:
        return False
    return score >= table.threshold_for(max(fmr_target, table.min_fmr))
