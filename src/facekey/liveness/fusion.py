"""Fusion: one passive-session decision from per-frame scores, temporal and thermal evidence.

The decision is a logistic model over four features of a burst (see
:mod:`facekey.liveness.temporal`):

* ``passive``: the logit of the mean passive live probability, clipped to ±8;
* ``nonplanarity``: log10 of the homography residual over face size (a rigid plane is low);
* ``nonplanar_share``: log10 of that residual over the landmark motion: a photo or screen that
  moves a lot still fits one homography, a head that moves does not;
* ``stillness``: how far (in decades) the landmark motion is below :data:`STILL_MOTION`, the
  jitter of the landmarker on a photo on a stand; 0 above it.

Blinks are measured and reported in the evidence but carry no weight: the development bursts
(a few seconds) contain none, so no weight could be fitted for them.

``score = sigmoid(bias + Σ weight × feature)``; "live" at or above :data:`LIVE_AT`, "spoof" at
or below :data:`SPOOF_AT`, "inconclusive" between. Thermal evidence, when present, vetoes
("spoof" vote → spoof) or adds :data:`THERMAL_LIVE_BONUS` to the logit ("live" vote).
Photometric evidence (:mod:`facekey.liveness.photometric`, version 2), when the pose changed by
at least :data:`~facekey.liveness.photometric.MIN_POSE_CHANGE` degrees, vetoes when the face
region moved as one plane (a photo or a screen, however tilted); it carries no weight otherwise.

How the weights were fitted (:func:`fit_logistic`, L2-regularised Newton steps): only on the
development data in ``../shared/data`` turned into sessions by
:func:`facekey.evaluation.liveness_sessions.build_dev_sessions` (NUAA live and hand-held-print
windows, head-turn windows, NUAA stills moved/scaled/rotated or left static), with the script
``benchmarks/fit_liveness_fusion.py``. Bump :data:`FUSION_VERSION` whenever a weight changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from facekey.liveness.photometric import PhotometricEvidence
from facekey.liveness.temporal import TemporalFeatures
from facekey.liveness.thermal import ThermalEvidence

FUSION_VERSION: Final = "2"
FEATURES: Final = ("passive", "nonplanarity", "nonplanar_share", "stillness")
WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "bias": 14.328,
        "passive": 0.345,
        "nonplanarity": 5.437,
        "nonplanar_share": 2.933,
        "stillness": -4.093,
    }
)
#: Landmark motion (over face size, per frame) below which a burst counts as still.
STILL_MOTION: Final = 0.006
LIVE_AT: Final = 0.6
SPOOF_AT: Final = 0.4
THERMAL_LIVE_BONUS: Final = 2.0
PASSIVE_CLIP: Final = 8.0
_FLOOR: Final = 1e-5
PLANAR_REASON: Final = (
    "the face region moved as one plane (a photo or a screen): photometric agreement {:.3f}"
)

Result = Literal["live", "spoof", "inconclusive"]


@dataclass(frozen=True)
class SessionDecision:
    """A session's result, its fused live probability, and the evidence behind it."""

    result: Result
    score: float
    evidence: Mapping[str, Any] = field(default_factory=dict)


def feature_vector(features: TemporalFeatures) -> npt.NDArray[np.float64]:
    """The model's inputs, in :data:`FEATURES` order."""
    p = min(max(features.passive_mean, 1e-6), 1 - 1e-6)
    passive = float(np.clip(math.log(p / (1 - p)), -PASSIVE_CLIP, PASSIVE_CLIP))
    nonplanarity = math.log10(max(features.nonplanarity, _FLOOR))
    motion = math.log10(max(features.motion, _FLOOR))
    stillness = max(0.0, math.log10(STILL_MOTION) - motion)
    return np.array([passive, nonplanarity, nonplanarity - motion, stillness])


def _logit(features: TemporalFeatures, weights: Mapping[str, float]) -> float:
    values = feature_vector(features)
    return weights["bias"] + float(
        sum(weights[n] * v for n, v in zip(FEATURES, values, strict=True))
    )


def decide_session(
    features: TemporalFeatures,
    thermal: ThermalEvidence | None = None,
    weights: Mapping[str, float] = WEIGHTS,
    photometric: PhotometricEvidence | None = None,
) -> SessionDecision:
    """Fuse a burst's features (and thermal and photometric evidence, if any) into a
    decision; a planar photometric measure vetoes."""
    logit = _logit(features, weights)
    if thermal is not None and thermal.vote == "live":
        logit += THERMAL_LIVE_BONUS
    score = 1.0 / (1.0 + math.exp(-float(np.clip(logit, -50, 50))))
    evidence: dict[str, Any] = {"fusion_version": FUSION_VERSION, **vars(features)}
    if thermal is not None:
        evidence["thermal"] = dict(vars(thermal))
        if thermal.vote == "spoof":
            return SessionDecision("spoof", min(score, SPOOF_AT), evidence)
    if photometric is not None:
        evidence["photometric"] = dict(vars(photometric))
        if photometric.planar:
            evidence["reason"] = PLANAR_REASON.format(photometric.agreement)
            return SessionDecision("spoof", min(score, SPOOF_AT), evidence)
    return SessionDecision(_result(score), score, evidence)


def _result(score: float) -> Result:
    if score >= LIVE_AT:
        return "live"
    if score <= SPOOF_AT:
        return "spoof"
    return "inconclusive"


def inconclusive(reason: str) -> SessionDecision:
    """A decision that could not be made (too few frames with a face, ...)."""
    return SessionDecision(
        "inconclusive", 0.0, {"fusion_version": FUSION_VERSION, "reason": reason}
    )


def fit_logistic(
    rows: Sequence[TemporalFeatures], live: Sequence[bool], l2: float = 1.0, steps: int = 50
) -> dict[str, float]:
    """Weights (bias and one per feature) of an L2-regularised logistic regression."""
    x = np.column_stack([np.ones(len(rows)), np.array([feature_vector(r) for r in rows])])
    y = np.asarray(live, dtype=np.float64)
    w = np.zeros(x.shape[1])
    penalty = l2 * np.eye(x.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -50, 50)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
        w -= np.linalg.solve(hessian, gradient)
    return {"bias": float(w[0]), **{n: float(v) for n, v in zip(FEATURES, w[1:], strict=True)}}
