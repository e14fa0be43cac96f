"""``facekey liveness calibrate``: choose the passive scorer's threshold on data (a dev tool).

A face is called live by the passive scorer when its score is at least the threshold. The
threshold is the lowest one at which the *worst* attack type's APCER (ISO/IEC 30107-3: the share
of that type's presentations accepted as live) is at most a target, so it rejects as few live
faces as the data allow. ``facekey liveness calibrate`` writes it to
``facekey/liveness/passive-threshold.json`` (read at run time by
:func:`facekey.liveness.threshold.load_threshold`) together with the scorer's name and version,
the data it was chosen on and the date.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facekey.liveness.threshold import PassiveThreshold, packaged_threshold_path


def threshold_at_apcer(attack_scores: Mapping[str, npt.ArrayLike], apcer: float) -> float:
    """The lowest threshold at which every attack type's APCER is at most ``apcer``.

    A presentation is accepted when ``score >= threshold``; NaN scores (no face found) are never
    accepted. For each type with ``n`` scores, at most ``floor(apcer × n)`` may be accepted, so
    the threshold lies just above the next-highest score of that type.
    """
    if not attack_scores:
        raise ValueError("no attack scores")
    return max(
        _type_threshold(np.asarray(s, dtype=np.float64), apcer) for s in attack_scores.values()
    )


def _type_threshold(scores: npt.NDArray[np.float64], apcer: float) -> float:
    descending = np.sort(scores[~np.isnan(scores)])[::-1]
    allowed = math.floor(apcer * scores.size + 1e-9)
    if allowed >= descending.size:
        return -math.inf
    return float(np.nextafter(descending[allowed], math.inf))


def calibrate(
    *,
    scorer: str,
    scorer_version: str,
    live_scores: npt.ArrayLike,
    attack_scores: Mapping[str, npt.ArrayLike],
    apcer: float = 0.05,
    data: Mapping[str, Any] | None = None,
) -> PassiveThreshold:
    """Choose the threshold on the given scores (see :func:`threshold_at_apcer`)."""
    live = np.asarray(live_scores, dtype=np.float64)
    threshold = threshold_at_apcer(attack_scores, apcer)
    finite = live[np.isfinite(live)]
    bpcer = float(np.mean(~(finite >= threshold))) if finite.size else math.nan
    summary = {**(data or {}), "bpcer_on_this_data": round(bpcer, 4)}
    return PassiveThreshold(
        scorer=scorer,
        scorer_version=scorer_version,
        threshold=threshold,
        apcer_target=apcer,
        data=summary,
        date=datetime.now(UTC).date().isoformat(),
    )


def write_threshold(threshold: PassiveThreshold, path: Path) -> Path:
    """Write the threshold file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(threshold.to_json() + "\n", encoding="utf-8")
    return path


def run_passive_calibration(
    *, live: Path, attacks: list[Path], apcer: float = 0.05, out: Path | None = None
) -> PassiveThreshold:
    """Score the folders with the default checker, choose the threshold and write it."""
    from facekey.evaluation.datasets import image_files
    from facekey.evaluation.liveness_eval import attack_folders
    from facekey.liveness.session import LivenessChecker, score_files

    checker = LivenessChecker()
    live_scores = score_files(image_files(live), checker.passive_score)
    attack_scores = {
        name: score_files(image_files(folder), checker.passive_score)
        for name, folder in attack_folders(attacks).items()
    }
    data = {
        "live": f"{live} ({live_scores.size} images)",
        "attack": {
            n: f"{attacks_dir} ({attack_scores[n].size} images)"
            for n, attacks_dir in attack_folders(attacks).items()
        },
        "detector": checker.detector.name,
    }
    threshold = calibrate(
        scorer=checker.scorer.name,
        scorer_version=checker.scorer.version,
        live_scores=live_scores,
        attack_scores=attack_scores,
        apcer=apcer,
        data=data,
    )
    write_threshold(threshold, out or packaged_threshold_path())
    return threshold
