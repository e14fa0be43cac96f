"""``facekey liveness calibrate``: choose the passive scorer's threshold on data (a dev tool).

A face is called live by the passive scorer when its score is at least the threshold. The
threshold is the lowest one at which the *worst* attack type's APCER (ISO/IEC 30107-3: the share
of that type's presentations accepted as live) is at most a target, so it rejects as few live
faces as the data allow; the attack "types" are the data's *sources* (see
:mod:`facekey.evaluation.liveness_loso`). ``facekey liveness calibrate`` writes it to
``facekey/liveness/passive-threshold.json`` (read at run time by
:func:`facekey.liveness.threshold.load_threshold`) together with the scorer's name and version,
the data it was chosen on and the date.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facekey.errors import DatasetError
from facekey.liveness.threshold import PassiveThreshold, load_threshold, packaged_threshold_path


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


def run_passive_calibration(
    *,
    live: Path | None = None,
    attacks: Sequence[Path] = (),
    sources: Path | None = None,
    sessions: Path | None = None,
    apcer: float = 0.05,
    out: Path | None = None,
) -> PassiveThreshold:
    """Score the data with the default checker, choose the operating point, write the file.

    Frames come from ``sources`` (a source tree) or from ``live`` with one ``attacks`` folder
    per source; the burst thresholds from the ``sessions`` tree (kept from the packaged file
    without one). The rule is :func:`facekey.evaluation.liveness_loso.fit_operating`.
    """
    from facekey.evaluation.liveness_eval import (
        attack_folders,
        run_scores,
        source_folders,
        source_scores,
    )
    from facekey.evaluation.liveness_loso import SourceScores, fit_operating
    from facekey.liveness.session import LivenessChecker

    checker = LivenessChecker()
    if sources is not None:
        frames = [source_scores(f, checker, False) for f in source_folders(sources)]
        described: dict[str, Any] = {"sources": f"{sources} ({len(frames)} sources)"}
    elif live is not None and attacks:
        live_side = run_scores(live, checker, False)
        frames = [
            SourceScores(name, name, live_side, run_scores(folder, checker, False))
            for name, folder in attack_folders(attacks).items()
        ]
        described = {"live": str(live), "attack": [str(a) for a in attacks]}
    else:
        raise DatasetError("give a source tree, or live images and attack folders")
    threshold = fit_operating(frames, apcer).live_at
    current = load_threshold(checker.scorer.name, checker.scorer.version)
    live_at, spoof_at = current.session_live_at, current.session_spoof_at
    if sessions is not None:
        bursts = [source_scores(f, checker, True) for f in source_folders(sessions)]
        operating = fit_operating(bursts, apcer, sessions=True)
        live_at, spoof_at = operating.live_at, operating.spoof_at
        described["sessions"] = f"{sessions} ({len(bursts)} sources)"
    described |= {"detector": checker.detector.name, "rule": "every source's APCER <= target"}
    result = PassiveThreshold(
        scorer=checker.scorer.name,
        scorer_version=checker.scorer.version,
        threshold=threshold,
        apcer_target=apcer,
        session_live_at=live_at,
        session_spoof_at=spoof_at,
        data=described,
        date=datetime.now(UTC).date().isoformat(),
    )
    write_threshold(result, out or packaged_threshold_path())
    return result


def write_threshold(threshold: PassiveThreshold, path: Path) -> Path:
    """Write the threshold file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(threshold.to_json() + "\n", encoding="utf-8")
    return path
