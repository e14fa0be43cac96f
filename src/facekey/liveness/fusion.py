"""Fusion: one passive-session decision from per-frame scores, temporal and thermal evidence.

This is the one place where a burst's evidence becomes ``live``, ``spoof`` or ``inconclusive``;
the session flow (passive and challenge sessions) and ``facekey eval liveness`` both call
:func:`decide_burst` (through :class:`facekey.liveness.session.LivenessChecker`).

Version 3 (leave-one-source-out on ``../shared/data``, see ``docs/liveness.md``):

* the **passive score** of a burst is the mean of its scored frames' log-odds (each clipped to
  ±8), reported as a probability (``score``). It is live at or above the shipped
  ``session_live_at`` (chosen so that every development source's attacks stay ≤ 5 % APCER),
  spoof at or below ``session_spoof_at``, inconclusive between;
* a burst that is **not clearly live** is ``inconclusive``, never ``live``, whatever its score:
  a face that did not move beyond the landmarker's jitter (:data:`STILL_MOTION`: a photo on a
  stand), or whose landmarks moved as one plane (:data:`PLANAR_SHARE`: a photo or a screen
  waved in front of the camera). At checkout an inconclusive burst turns into a challenge;
* **vetoes** make it ``spoof``: a thermal frame without warm skin, or a photometric planar
  agreement (:mod:`facekey.liveness.photometric`) after a pose change of ≥ 12°;
* a thermal "live" vote adds :data:`THERMAL_LIVE_BONUS` to the log-odds.

The fitted logistic model of versions 1–2 (fitted on NUAA, where the passive pair is already
perfect) is gone: in leave-one-source-out its temporal weights only cost live sessions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from facekey.liveness.passive import LOG_ODDS_CLIP, log_odds, sigmoid
from facekey.liveness.photometric import PhotometricEvidence, photometric_evidence
from facekey.liveness.temporal import MIN_FRAMES, FrameObservation, burst_features
from facekey.liveness.thermal import ThermalEvidence, thermal_evidence
from facekey.liveness.threshold import PassiveThreshold
from facekey.vision.types import FloatArray, ImageArray

FUSION_VERSION: Final = "3"
#: Landmark motion (over face size, per frame) below which a burst counts as still: a photo on
#: a stand shows only the landmarker's jitter (tracked, on development stills with sensor
#: noise: median 0.0021, max 0.0039).
STILL_MOTION: Final = 0.0045
#: log10(homography residual / motion) below which a face that moved a lot (at least
#: :data:`PLANAR_MOTION` per frame) moved as one plane: tracked landmarks of moved stills give
#: −0.86 to −1.6; live heads that mostly translate also fall below it, and pay a challenge
#: (the share of live sessions this costs is in ``docs/liveness.md``).
PLANAR_SHARE: Final = -0.85
PLANAR_MOTION: Final = 0.04
THERMAL_LIVE_BONUS: Final = 2.0
_FLOOR: Final = 1e-5
PLANAR_REASON: Final = (
    "the face region moved as one plane (a photo or a screen): photometric agreement {:.3f}"
)
THERMAL_REASON: Final = "the thermal frame shows no warm skin"

Result = Literal["live", "spoof", "inconclusive"]


@dataclass(frozen=True)
class SessionDecision:
    """A session's result, its fused live probability, and the evidence behind it."""

    result: Result
    score: float
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operating:
    """The operating point of a burst decision (probabilities of the fused score)."""

    live_at: float
    spoof_at: float

    @classmethod
    def of(cls, threshold: PassiveThreshold) -> Operating:
        return cls(threshold.session_live_at, threshold.session_spoof_at)


def passive_log_odds(scores: Sequence[float]) -> float:
    """Mean clipped log-odds of the frames' passive scores (NaN: unscored frames skipped)."""
    odds = [log_odds(s) for s in scores if not math.isnan(s)]
    return float(np.mean(odds)) if odds else -LOG_ODDS_CLIP


def not_clearly_live(motion: float, nonplanarity: float) -> str | None:
    """Why the burst's movement cannot tell a live face from a still, or None."""
    if motion < STILL_MOTION:
        return f"the face did not move (landmark motion {motion:.4f} of its size per frame)"
    share = math.log10(max(nonplanarity, _FLOOR)) - math.log10(max(motion, _FLOOR))
    if motion >= PLANAR_MOTION and share < PLANAR_SHARE:
        return "the face's landmarks moved as one plane (a photo or a screen moved)"
    return None


def result_of(score: float, operating: Operating, *, gate: str | None = None) -> Result:
    """Three-way result of a fused probability; a gate keeps it from being live."""
    if score <= operating.spoof_at:
        return "spoof"
    if score >= operating.live_at and gate is None:
        return "live"
    return "inconclusive"


def decide_session(
    observations: Sequence[FrameObservation],
    operating: Operating,
    thermal: ThermalEvidence | None = None,
    photometric: PhotometricEvidence | None = None,
) -> SessionDecision:
    """Fuse a burst's observations (frames with a face) and optional thermal and photometric
    evidence into a decision (see the module docstring)."""
    features = burst_features(observations)
    odds = passive_log_odds([o.passive for o in observations])
    if thermal is not None and thermal.vote == "live":
        odds += THERMAL_LIVE_BONUS
    score = sigmoid(odds)
    gate = not_clearly_live(features.motion, features.nonplanarity)
    evidence: dict[str, Any] = {
        "fusion_version": FUSION_VERSION,
        **vars(features),
        "passive_log_odds": round(odds, 4),
        "passive_score": score,
        "scored_frames": sum(not math.isnan(o.passive) for o in observations),
        "gated": gate is not None,
        "vetoed": False,
    }
    if thermal is not None:
        evidence["thermal"] = dict(vars(thermal))
        if thermal.vote == "spoof":
            evidence["vetoed"] = True
            return SessionDecision("spoof", min(score, operating.spoof_at), evidence)
    if photometric is not None:
        evidence["photometric"] = dict(vars(photometric))
        if photometric.planar:
            evidence["vetoed"] = True
            evidence["reason"] = PLANAR_REASON.format(photometric.agreement)
            return SessionDecision("spoof", min(score, operating.spoof_at), evidence)
    result = result_of(score, operating, gate=gate)
    if gate is not None and result == "inconclusive":
        evidence["reason"] = gate
    return SessionDecision(result, score, evidence)


def decide_burst(
    images: Sequence[ImageArray],
    observations: Sequence[FrameObservation],
    operating: Operating,
    thermal: FloatArray | None = None,
    relocate: Callable[[ImageArray], FrameObservation | None] | None = None,
    *,
    thorough: bool = False,
) -> SessionDecision:
    """The decision of a burst: ``observations`` are its frames with a face (the same
    indices in ``images``); ``thermal`` (°C) is registered to the last of them.

    The photometric measure (a veto) is taken only when it can change the result: when the
    burst would be live, or, ``thorough``, also when it would be inconclusive (a challenge
    session: an inconclusive passive burst would step up to a challenge, which measures it).
    It uses the most-turned pair of frames, whose landmarks ``relocate`` measures anew when given
    (tracked landmarks lag a fast tilt by a few pixels, enough to spoil the alignment).
    """
    if len(observations) < MIN_FRAMES:
        return inconclusive(f"a face in {len(observations)} of {len(images)} frames")
    evidence = None
    if thermal is not None:
        last = observations[-1]
        evidence = thermal_evidence(thermal, images[-1].shape, last.points, last.box)
    decision = decide_session(observations, operating, evidence)
    if decision.result == "spoof" or (decision.result == "inconclusive" and not thorough):
        return decision
    photometric = photometric_evidence(images, observations, relocate)
    if photometric is None:
        return decision
    return decide_session(observations, operating, evidence, photometric)


def inconclusive(reason: str) -> SessionDecision:
    """A decision that could not be made (too few frames with a face, ...)."""
    return SessionDecision(
        "inconclusive", 0.0, {"fusion_version": FUSION_VERSION, "reason": reason}
    )


def reason_of(decision: SessionDecision) -> str:
    """Why a decision is not live, in words."""
    thermal = decision.evidence.get("thermal")
    if isinstance(thermal, Mapping) and thermal.get("vote") == "spoof":
        return THERMAL_REASON
    reason = decision.evidence.get("reason")
    if isinstance(reason, str):
        return reason
    return f"passive evidence: {decision.result} (score {decision.score:.2f})"


_THERMAL_VOTES: Final = {"live": 1, "inconclusive": 0, "spoof": -1}


def numeric_evidence(decision: SessionDecision) -> dict[str, float]:
    """The numbers of a decision's evidence (booleans as 0/1, nested evidence flattened), as
    a session row stores them."""
    numbers: dict[str, float] = {"score": round(decision.score, 4)}
    if FUSION_VERSION.isdigit():
        numbers["fusion_version"] = float(FUSION_VERSION)
    for name, value in decision.evidence.items():
        if isinstance(value, Mapping):
            numbers |= {f"{name}_{k}": v for k, v in _numbers(value).items()}
        elif isinstance(value, bool | int | float):
            numbers |= _numbers({name: value})
    return numbers


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in values.items():
        if name == "vote" and value in _THERMAL_VOTES:
            out[name] = float(_THERMAL_VOTES[value])
        elif isinstance(value, bool | int | float) and math.isfinite(float(value)):
            out[name] = round(float(value), 4)
    return out
