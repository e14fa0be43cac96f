"""Per-source liveness results and the leave-one-source-out (LOSO) protocol.

Every fitted piece of the liveness decision (the frame threshold, the session thresholds) is
judged by LOSO: for each source, the operating point is fitted on all the *other* sources and
applied to the one left out; the left-out results, pooled, are what the fit is expected to do
on a source it has never seen. Attacks of a type seen in no other source are the hard case:
that is exactly what held-out data of other cameras is.

The operating point (:func:`fit_operating`):

* ``live_at``: the lowest threshold at which **every training source's** attacks have an APCER
  of at most the target, on their raw scores (gates and vetoes do not count: they are extra
  protection, and an attack one source's gate catches may pass another's). Sources, not attack
  types, are the unit: pooling the sources of a type
  lets an easy source hide a hard one (on the development data, pooling by type lets 94 % of
  the full-frame recapture through when it is left out);
* ``spoof_at`` (sessions): the highest threshold below which at most :data:`SPOOF_BPCER` of the
  training live sessions fall, capped at :data:`SPOOF_CAP` (and never above ``live_at``).
  Between the two, a session is inconclusive: a challenge at checkout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from facekey.evaluation.liveness_calibration import threshold_at_apcer
from facekey.liveness.fusion import Operating, result_of

Scores = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]
#: Share of training live sessions that may fall at or below ``spoof_at``.
SPOOF_BPCER: Final = 0.01
#: ``spoof_at`` never exceeds this fused score (mean log-odds −2.9): only a clearly low score is
#: a spoof. A source whose live faces the pair scores low (the close-up screen source's live
#: bursts reach down to 0.16) would otherwise be called spoof by a quantile of the others.
SPOOF_CAP: Final = 0.05


@dataclass(frozen=True)
class SideScores:
    """Scores of one side (live or attack) of a source: a probability per presentation (NaN:
    no face or no decision), and which presentations are gated (never live: a still or planar
    burst) or vetoed (spoof whatever the score: thermal, photometric)."""

    scores: Scores
    gated: Flags
    vetoed: Flags

    @classmethod
    def plain(cls, scores: npt.ArrayLike) -> SideScores:
        values = np.asarray(scores, dtype=np.float64)
        none = np.zeros(values.shape, dtype=bool)
        return cls(values, none, none.copy())

    def outcomes(self, operating: Operating) -> dict[str, int]:
        """How many are live, inconclusive and spoof at ``operating`` (NaN: inconclusive)."""
        counts = {"live": 0, "inconclusive": 0, "spoof": 0}
        for score, gated, vetoed in zip(self.scores, self.gated, self.vetoed, strict=True):
            if vetoed:
                counts["spoof"] += 1
            elif math.isnan(score):
                counts["inconclusive"] += 1
            else:
                gate = "gated" if gated else None
                counts[result_of(float(score), operating, gate=gate)] += 1
        return counts

    def acceptable(self) -> Scores:
        """Scores with gated, vetoed and missing presentations never accepted (−inf)."""
        scores = np.where(self.gated | self.vetoed, -np.inf, self.scores)
        return np.nan_to_num(scores, nan=-np.inf, neginf=-np.inf)

    def scored(self) -> Scores:
        """The scores of the presentations that were scored and not vetoed."""
        return self.scores[~self.vetoed & ~np.isnan(self.scores)]


@dataclass(frozen=True)
class SourceScores:
    """One source: its name, its attack type, and the scores of its live and attack sides."""

    name: str
    attack_type: str
    live: SideScores
    attack: SideScores


def fit_operating(
    training: Sequence[SourceScores], apcer: float = 0.05, sessions: bool = False
) -> Operating:
    """The operating point fitted on ``training`` (see the module docstring); for frames the
    two thresholds are equal (live or not)."""
    # raw attack scores: the threshold must hold without the gates and vetoes, which are extra
    # protection (an attack gated in one source need not be gated in another)
    live_at = threshold_at_apcer({s.name: s.attack.scores for s in training}, apcer)
    if not sessions:
        return Operating(live_at, live_at)
    # gated live sessions count: a still or planar burst with a low score would be spoof
    live = np.sort(np.concatenate([s.live.scored() for s in training]))
    allowed = math.floor(SPOOF_BPCER * live.size + 1e-9)
    spoof_at = float(np.nextafter(live[allowed], -math.inf)) if live.size else 0.0
    return Operating(live_at, min(spoof_at, live_at, SPOOF_CAP))


@dataclass(frozen=True)
class SourceResult:
    """One source's outcomes at one operating point (fitted without it, in LOSO)."""

    source: str
    attack_type: str
    operating: Operating
    live: Mapping[str, int]
    attack: Mapping[str, int]

    def row(self) -> dict[str, Any]:
        """The report's row: counts and rates."""
        return {
            "attack_type": self.attack_type,
            "live_at": self.operating.live_at,
            "spoof_at": self.operating.spoof_at,
            "live": dict(self.live),
            "attack": dict(self.attack),
            "bpcer": _share(self.live, "live", accepted=False),
            "apcer": _share(self.attack, "live", accepted=True),
            "live_inconclusive": _share(self.live, "inconclusive", accepted=True),
            "live_spoof": _share(self.live, "spoof", accepted=True),
        }


def _share(counts: Mapping[str, int], key: str, *, accepted: bool) -> float:
    total = sum(counts.values())
    if total == 0:
        return math.nan
    share = counts[key] / total
    return share if accepted else 1.0 - share


def evaluate_at(sources: Sequence[SourceScores], operating: Operating) -> list[SourceResult]:
    """Every source at one operating point (e.g. the shipped one)."""
    return [SourceResult(s.name, s.attack_type, operating, *_both(s, operating)) for s in sources]


def _both(source: SourceScores, operating: Operating) -> tuple[dict[str, int], dict[str, int]]:
    return source.live.outcomes(operating), source.attack.outcomes(operating)


def leave_one_source_out(
    sources: Sequence[SourceScores], apcer: float = 0.05, sessions: bool = False
) -> list[SourceResult]:
    """Each source decided at the operating point fitted on all the others."""
    results = []
    for held_out in sources:
        training = [s for s in sources if s.name != held_out.name]
        operating = fit_operating(training, apcer, sessions)
        results.extend(evaluate_at([held_out], operating))
    return results


def summary(results: Sequence[SourceResult]) -> dict[str, Any]:
    """Per source, per attack type (pooled over its sources) and overall (pooled live)."""
    per_type: dict[str, dict[str, int]] = {}
    live: dict[str, int] = {"live": 0, "inconclusive": 0, "spoof": 0}
    for result in results:
        counts = per_type.setdefault(result.attack_type, {"live": 0, "inconclusive": 0, "spoof": 0})
        for key in counts:
            counts[key] += result.attack[key]
            live[key] += result.live[key]
    apcer_per_type = {t: _share(c, "live", accepted=True) for t, c in per_type.items()}
    return {
        "per_source": {r.source: r.row() for r in results},
        "apcer_per_type": apcer_per_type,
        "apcer": max(apcer_per_type.values(), default=math.nan),
        "apcer_worst_source": max((r.row()["apcer"] for r in results), default=math.nan),
        "bpcer": _share(live, "live", accepted=False),
        "live_inconclusive": _share(live, "inconclusive", accepted=True),
        "live_spoof": _share(live, "spoof", accepted=True),
        "samples": {"live": sum(live.values()), "attack": per_type},
    }
