"""Fit the passive-session fusion weights on the development data (../shared/data only).

Builds sessions with :func:`facekey.evaluation.liveness_sessions.build_dev_sessions`, measures each
burst's features with :class:`facekey.liveness.session.LivenessChecker`, prints 5-fold
cross-validated errors and the weights fitted on all sessions, to be copied into
``facekey.liveness.fusion.WEIGHTS`` (bump ``FUSION_VERSION``).

    .venv/bin/python benchmarks/fit_liveness_fusion.py ../shared/data /tmp/lv-sessions
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

from facekey.evaluation.datasets import image_files
from facekey.evaluation.liveness_sessions import build_dev_sessions
from facekey.imaging import read_image_file
from facekey.liveness.fusion import decide_session, fit_logistic
from facekey.liveness.session import LivenessChecker
from facekey.liveness.temporal import TemporalFeatures, burst_features

L2 = 0.3
FOLDS = 5


def measure(root: Path) -> list[tuple[str, TemporalFeatures]]:
    checker = LivenessChecker()
    rows = []
    for kind in sorted(p for p in root.iterdir() if p.is_dir()):
        for session in sorted(p for p in kind.iterdir() if p.is_dir()):
            seen = [checker.observe(read_image_file(p)) for p in image_files(session)]
            observations = [o for o in seen if o is not None]
            if len(observations) >= 3:
                rows.append((kind.name, burst_features(observations)))
    return rows


def cross_validate(rows: list[tuple[str, TemporalFeatures]]) -> Counter[tuple[str, str]]:
    order = np.random.default_rng(0).permutation(len(rows))
    outcomes: Counter[tuple[str, str]] = Counter()
    for fold in np.array_split(order, FOLDS):
        train = [rows[i] for i in order if i not in set(fold)]
        weights = fit_logistic([f for _, f in train], [k == "live" for k, _ in train], l2=L2)
        for i in fold:
            kind, features = rows[i]
            outcomes[(kind, decide_session(features, weights=weights).result)] += 1
    return outcomes


def main() -> None:
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    if not out.exists():
        print(build_dev_sessions(data, out))
    rows = measure(out)
    print("5-fold cross-validated outcomes:", sorted(cross_validate(rows).items()))
    weights = fit_logistic([f for _, f in rows], [k == "live" for k, _ in rows], l2=L2)
    print("weights fitted on all sessions:", {k: round(v, 3) for k, v in weights.items()})


if __name__ == "__main__":
    main()
