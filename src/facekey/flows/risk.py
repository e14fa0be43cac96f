"""The checkout risk policy: approve, ask for a step-up, or decline a pay-by-face checkout.

Pure and versioned: no database, no HTTP, no I/O. The checkout flow searches the gallery,
re-checks every hit against the database (subject active, payment consent, merchant not
excluded), reads each hit's score through the calibration table of its engine and condition
(:func:`read_candidates`), counts recent approvals, and hands the facts to :func:`decide`.
Every :class:`Decision` carries :data:`POLICY_VERSION`; any change of a rule or a default
below bumps it.

The math
--------
The table maps a similarity score ``s`` to ``FMR(s)``, the probability that one comparison of
two *different* people scores at least ``s``. A search compares the probe with ``N`` gallery
subjects; if the customer is enrolled, ``N - 1`` of those comparisons are non-mated, otherwise
all ``N`` are. The chance that *some* non-mated subject reaches the best score ``s₁`` is, by
the union bound (no independence assumed),

    P(false match) ≤ min(1, N · FMR(s₁))                                  (1)

and that is the chance of charging the wrong person if the best candidate is approved. So:

* **Face-only approval** needs ``N · FMR(s₁) ≤ false_charge_target`` (default 1e-5 per
  transaction), i.e. a per-comparison FMR of at most ``false_charge_target / N``.
* **Why step-up exists.** The table can only vouch for FMRs it measured: its lowest is
  ``min_fmr = 1 / impostor_pairs`` at best (≈ 8.0e-8 for the shipped dlib table, 12.5 M
  impostor pairs); above its highest score :meth:`CalibrationTable.fmr_at` returns that bound.
  With ``N = 100 000`` subjects, (1) asks for ``FMR ≤ 1e-5 / 1e5 = 1e-10``, far below what
  any score can be shown to reach, so face-only approval is impossible however well the face
  matches: the largest gallery that can ever be approved face-only is
  ``⌊false_charge_target / min_fmr⌋`` (124 for dlib, :func:`max_face_only_gallery`).
  A step-up (the phone number's last digits, or a PIN) narrows the search to a *bucket* of
  ``N_b`` subjects (about ``N / 10 000`` for four phone digits) and (1) is applied again with
  ``N = N_b`` and ``step_up_false_charge_target``: the requirement relaxes by the bucket
  factor and a genuine customer is approved at ordinary verification thresholds.
* **Margin.** Even when (1) holds, two enrolled people may both match well (twins, look-alikes,
  a duplicate enrolment). With ``FMR₁ = FMR(s₁)`` and ``FMR₂ = FMR(s₂)`` of the runner-up the
  margin holds when there is no runner-up or ``FMR₂ ≥ margin_fmr_ratio · FMR₁`` (default 100:
  the runner-up's score is at least a hundred times more common among strangers). Otherwise
  the candidates are ambiguous: face-only steps up, a bucket search declines.
* **Reading the table pessimistically.** ``FMR₁`` is taken as 1 below the table's lowest
  score (the table says nothing there) and as the table's bound above its highest score; both
  can only make the policy stricter. ``FMR₂`` is read as the table returns it (clamped to the
  lowest point's FMR below it), which can only make the ratio smaller. Equalities are allowed
  with a relative tolerance of 1e-9 so that a score exactly at a threshold passes.
* **Several tables in one search.** Candidates are compared by their FMR, not their score, so
  one search may span galleries of two engines (while a network migrates) or conditions
  (a masked probe is read with the masked table): each candidate's score is read through its
  own table, the candidates are ordered by FMR, and ``N`` counts every template searched.
* **Plausible face.** ``FMR₁ ≤ min_match_fmr`` (default 1e-2; ≈ 98.8 % of genuine dlib
  comparisons reach it) means the face is worth a step-up; above it the result is "no match".

Rules, in the order they are applied (the first that fires decides)
------------------------------------------------------------------
Face-only search (``SearchOutcome.kind == "face_only"``, :func:`evaluate_face_only`):

1. ``declined/locked_out``       the device or the best candidate is locked out;
2. ``declined/replayed_image``   the probe is an exact copy of a recent image;
3. ``declined/currency_not_accepted``  ``RiskConfig.currency`` is set and differs;
4. ``declined/amount_over_limit``  amount > ``max_amount_minor``;
5. ``declined/velocity_device``  the device's recent approvals ≥ its limit;
6. ``declined/no_candidates``    nobody left after the re-checks;
7. ``declined/no_match``         ``FMR₁ > min_match_fmr``;
8. ``declined/velocity_subject`` the best candidate's recent approvals ≥ its limit;
9. ``step_up/amount_requires_step_up``  amount > ``step_up_amount_minor``;
10. ``step_up/gallery_too_large_for_face_only``  ``N · FMR₁ > false_charge_target``;
11. ``step_up/ambiguous_candidates``  the margin does not hold;
12. ``approved/face_match``.

Bucket search after a step-up (``kind == "bucket"``, :func:`evaluate_step_up`): rules 1-6 and
8 as above, with ``N`` the bucket size, and instead of 7 and 9-12:
``declined/no_match_in_bucket`` unless ``N · FMR₁ ≤ step_up_false_charge_target`` and the
margin holds, else ``approved/step_up_match``.

Velocity counts are approvals *before* this request in the caller's window of
``velocity_window_s``; the request is declined when the count has reached the limit.

Inputs the caller must get right
--------------------------------
* ``candidates`` hold one entry per subject (its best score), best (lowest FMR) first, after
  the re-checks; search with k ≥ 2 so that the margin can be judged.
* ``gallery_size`` counts the non-mated comparisons the search could have made: the number of
  subjects searched when a subject's score comes from one template, the number of templates
  when it is the maximum over several (the union bound then runs over templates).
* Each candidate must be read with the table of the engine version that produced its score
  and of the condition of the two faces (:func:`read_candidates`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Literal, NamedTuple, get_args

from facekey.calibration import CalibrationTable
from facekey.currencies import is_currency

__all__ = [
    "POLICY_VERSION",
    "Candidate",
    "Counters",
    "Decision",
    "DecisionKind",
    "Evidence",
    "Lockout",
    "Reason",
    "RiskConfig",
    "RiskInput",
    "SearchKind",
    "SearchOutcome",
    "StepUpMethod",
    "best_fmr",
    "decide",
    "estimated_false_match",
    "evaluate_face_only",
    "evaluate_step_up",
    "margin_holds",
    "max_face_only_gallery",
    "names_a_match",
    "rank_candidates",
    "read_candidates",
    "required_fmr",
]

POLICY_VERSION = "risk-2"
"""Version of these rules and defaults; recorded with every decision."""

DecisionKind = Literal["approved", "step_up", "declined"]
SearchKind = Literal["face_only", "bucket"]
StepUpMethod = Literal["phone_digits", "pin"]
Evidence = dict[str, float | int | str | None]

_TOLERANCE = 1e-9


class Reason(StrEnum):
    """Why the policy decided as it did (``Decision.reason``)."""

    FACE_MATCH = "face_match"
    STEP_UP_MATCH = "step_up_match"
    AMOUNT_REQUIRES_STEP_UP = "amount_requires_step_up"
    GALLERY_TOO_LARGE = "gallery_too_large_for_face_only"
    AMBIGUOUS = "ambiguous_candidates"
    LOCKED_OUT = "locked_out"
    REPLAYED_IMAGE = "replayed_image"
    CURRENCY_NOT_ACCEPTED = "currency_not_accepted"
    AMOUNT_OVER_LIMIT = "amount_over_limit"
    VELOCITY_DEVICE = "velocity_device"
    NO_CANDIDATES = "no_candidates"
    NO_MATCH = "no_match"
    VELOCITY_SUBJECT = "velocity_subject"
    NO_MATCH_IN_BUCKET = "no_match_in_bucket"


# --------------------------------------------------------------------------- inputs


class Candidate(NamedTuple):
    """One re-checked search hit, read through the calibration table of its comparison.

    ``fmr`` is the table's FMR at ``score`` (clamped at both ends of the table);
    ``below_table`` says the score is under the table's lowest point and ``fmr_is_bound`` that
    it is at or above its highest (``fmr`` is then only an upper bound). ``calibration`` names
    the table: engine/version/condition.
    """

    subject_id: str
    score: float
    fmr: float
    below_table: bool = False
    fmr_is_bound: bool = False
    calibration: str = ""


def read_candidates(
    hits: Iterable[tuple[str, float]], table: CalibrationTable
) -> tuple[Candidate, ...]:
    """Hits ``(subject_id, score)`` read through ``table``, best (lowest FMR) first."""
    name = f"{table.engine}/{table.engine_version}/{table.condition}"
    read = (
        Candidate(
            subject_id,
            score,
            table.fmr_at(score),
            score < table.points[0][0],
            table.is_upper_bound(score),
            name,
        )
        for subject_id, score in hits
    )
    return rank_candidates(read)


def rank_candidates(candidates: Iterable[Candidate]) -> tuple[Candidate, ...]:
    """Candidates best first, one per subject (its lowest FMR), from any number of tables."""
    best: dict[str, Candidate] = {}
    for candidate in sorted(candidates, key=lambda c: (c.fmr, -c.score)):
        best.setdefault(candidate.subject_id, candidate)
    return tuple(best.values())


@dataclass(frozen=True)
class SearchOutcome:
    """What a gallery search found.

    ``candidates`` are :class:`Candidate` readings, best (lowest FMR) first, one per subject,
    already re-checked. ``gallery_size`` is N: templates searched (the bucket size for
    ``"bucket"``).
    """

    candidates: tuple[Candidate, ...]
    gallery_size: int
    kind: SearchKind = "face_only"

    def __post_init__(self) -> None:
        """Reject inconsistent search results (a programming error of the caller)."""
        if self.kind not in get_args(SearchKind):
            raise ValueError(f"unknown search kind {self.kind!r}")
        if self.gallery_size < len(self.candidates):
            raise ValueError(
                f"{len(self.candidates)} candidates from a gallery of {self.gallery_size}"
            )
        values = [value for c in self.candidates for value in (c.score, c.fmr)]
        if not all(math.isfinite(value) for value in values):
            raise ValueError("candidate scores and FMRs must be finite")
        if not all(0.0 < c.fmr <= 1.0 for c in self.candidates):
            raise ValueError("candidate FMRs must be in (0, 1]")
        fmrs = [c.fmr for c in self.candidates]
        if any(later < earlier for earlier, later in pairwise(fmrs)):
            raise ValueError("candidates must be sorted best (lowest FMR) first")
        subjects = [c.subject_id for c in self.candidates]
        if len(set(subjects)) != len(subjects) or not all(subjects):
            raise ValueError("candidates need distinct, non-empty subject ids")


@dataclass(frozen=True)
class Counters:
    """Approvals before this request within ``RiskConfig.velocity_window_s``."""

    subject_recent_approvals: int = 0
    device_recent_approvals: int = 0


@dataclass(frozen=True)
class Lockout:
    """Whether the best candidate (subject) or the terminal (device) is locked out."""

    subject_locked: bool = False
    device_locked: bool = False


@dataclass(frozen=True)
class RiskInput:
    """Everything the policy looks at for one checkout attempt."""

    search: SearchOutcome
    amount_minor: int
    currency: str
    counters: Counters = Counters()
    lockout: Lockout = Lockout()
    replayed_image: bool = False
    preferred_step_up: StepUpMethod | None = None

    def __post_init__(self) -> None:
        """Reject a negative amount or a currency that is not an ISO 4217 code."""
        if self.amount_minor < 0:
            raise ValueError(f"amount must not be negative, got {self.amount_minor}")
        if not is_currency(self.currency):
            raise ValueError(f"currency must be an ISO 4217 code in use, got {self.currency!r}")


@dataclass(frozen=True)
class RiskConfig:
    """The network's risk settings; the defaults are part of :data:`POLICY_VERSION`.

    ``margin_fmr_ratio``: the runner-up must satisfy ``FMR₂ ≥ ratio · FMR₁`` (module docstring).
    ``currency``: the currency the amount limits are in; None accepts any currency with the
    same minor-unit limits. ``step_up_methods``: the first is offered unless the request
    prefers another one that is listed.
    """

    false_charge_target: float = 1e-5
    step_up_false_charge_target: float = 1e-3
    margin_fmr_ratio: float = 100.0
    min_match_fmr: float = 1e-2
    step_up_amount_minor: int = 10_000
    max_amount_minor: int = 100_000
    currency: str | None = None
    velocity_window_s: int = 3600
    max_subject_approvals: int = 10
    max_device_approvals: int = 120
    step_up_methods: tuple[StepUpMethod, ...] = ("phone_digits", "pin")

    def __post_init__(self) -> None:
        """Reject settings outside their meaningful ranges."""
        for name in ("false_charge_target", "step_up_false_charge_target", "min_match_fmr"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1]")
        if not self.margin_fmr_ratio >= 1.0:
            raise ValueError("margin_fmr_ratio must be at least 1")
        if not 0 <= self.step_up_amount_minor <= self.max_amount_minor:
            raise ValueError("need 0 <= step_up_amount_minor <= max_amount_minor")
        if min(self.velocity_window_s, self.max_subject_approvals, self.max_device_approvals) < 0:
            raise ValueError("velocity settings must not be negative")
        if not self.step_up_methods:
            raise ValueError("at least one step-up method is needed")
        if self.currency is not None and not is_currency(self.currency):
            raise ValueError(f"currency must be an ISO 4217 code in use, got {self.currency!r}")


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class Decision:
    """The policy's answer; ``evidence`` holds numbers and labels only, never a template.

    ``subject_id`` is set only when approved. ``step_up_method`` is set only for a step-up.
    """

    decision: DecisionKind
    reason: str
    policy_version: str
    subject_id: str | None
    evidence: Evidence = field(default_factory=dict)
    step_up_method: StepUpMethod | None = None


# --------------------------------------------------------------------------- the math


def estimated_false_match(gallery_size: int, fmr: float) -> float:
    """Return the union bound ``min(1, N · FMR)`` on a false match in a search of N."""
    return min(1.0, gallery_size * fmr)


def required_fmr(gallery_size: int, false_charge_target: float) -> float:
    """Return the per-comparison FMR a search of ``gallery_size`` needs to meet the target."""
    return false_charge_target / max(gallery_size, 1)


def max_face_only_gallery(table: CalibrationTable, false_charge_target: float) -> int:
    """Return the largest N for which any score can meet ``false_charge_target`` face-only."""
    return math.floor(false_charge_target / table.min_fmr * (1.0 + _TOLERANCE))


def margin_holds(best_fmr: float, second_fmr: float | None, ratio: float) -> bool:
    """Whether the runner-up is at least ``ratio`` times more common among strangers."""
    return second_fmr is None or second_fmr >= ratio * best_fmr * (1.0 - _TOLERANCE)


def _at_most(value: float, limit: float) -> bool:
    """``value <= limit`` with a relative tolerance for interpolation round-off."""
    return value <= limit * (1.0 + _TOLERANCE)


def best_fmr(candidate: Candidate) -> float:
    """FMR of a best candidate, read high: 1 below its table, its bound above it."""
    return 1.0 if candidate.below_table else candidate.fmr


def names_a_match(search: SearchOutcome, target: float, margin_fmr_ratio: float) -> bool:
    """Whether the best candidate may be named: N · FMR₁ within ``target`` and the margin
    holding (rules 10 and 11; identification uses them without the checkout's other rules)."""
    match = _Match.of(search)
    return match.meets(target) and match.margin_ok(margin_fmr_ratio)


@dataclass(frozen=True)
class _Match:
    """The numbers a decision rests on (all None without candidates)."""

    best: Candidate | None
    second: Candidate | None
    best_fmr: float | None
    second_fmr: float | None
    estimate: float | None

    @classmethod
    def of(cls, search: SearchOutcome) -> _Match:
        """The best two candidates and their FMRs (the best read high)."""
        hits = search.candidates[:2]
        best = hits[0] if hits else None
        second = hits[1] if len(hits) > 1 else None
        first = None if best is None else best_fmr(best)
        second_fmr = None if second is None else second.fmr
        estimate = None if first is None else estimated_false_match(search.gallery_size, first)
        return cls(best, second, first, second_fmr, estimate)

    def margin_ok(self, ratio: float) -> bool:
        """Whether the margin rule holds (False without candidates)."""
        return self.best_fmr is not None and margin_holds(self.best_fmr, self.second_fmr, ratio)

    def meets(self, target: float) -> bool:
        """Whether the estimated false-match probability is within ``target``."""
        return self.estimate is not None and _at_most(self.estimate, target)


# --------------------------------------------------------------------------- rules


def _locked_out(inputs: RiskInput) -> Reason | None:
    """Rule 1: the device or the best candidate is locked out."""
    lockout = inputs.lockout
    return Reason.LOCKED_OUT if lockout.device_locked or lockout.subject_locked else None


def _replayed(inputs: RiskInput) -> Reason | None:
    """Rule 2: the probe image is an exact copy of a recent one."""
    return Reason.REPLAYED_IMAGE if inputs.replayed_image else None


def _currency(inputs: RiskInput, config: RiskConfig) -> Reason | None:
    """Rule 3: the amount is in a currency the limits are not set in."""
    accepted = config.currency is None or inputs.currency == config.currency
    return None if accepted else Reason.CURRENCY_NOT_ACCEPTED


def _amount_over_limit(inputs: RiskInput, config: RiskConfig) -> Reason | None:
    """Rule 4: the amount is above what pay-by-face may ever charge."""
    return Reason.AMOUNT_OVER_LIMIT if inputs.amount_minor > config.max_amount_minor else None


def _device_velocity(inputs: RiskInput, config: RiskConfig) -> Reason | None:
    """Rule 5: the terminal has reached its approvals per window."""
    count = inputs.counters.device_recent_approvals
    return Reason.VELOCITY_DEVICE if count >= config.max_device_approvals else None


def _no_candidates(match: _Match) -> Reason | None:
    """Rule 6: nobody is left after the re-checks."""
    return Reason.NO_CANDIDATES if match.best is None else None


def _subject_velocity(inputs: RiskInput, config: RiskConfig) -> Reason | None:
    """Rule 8: the best candidate has reached its approvals per window."""
    count = inputs.counters.subject_recent_approvals
    return Reason.VELOCITY_SUBJECT if count >= config.max_subject_approvals else None


def _gate(inputs: RiskInput, config: RiskConfig, match: _Match) -> Reason | None:
    """Rules 1-6, shared by both searches: the first decline reason, or None."""
    return (
        _locked_out(inputs)
        or _replayed(inputs)
        or _currency(inputs, config)
        or _amount_over_limit(inputs, config)
        or _device_velocity(inputs, config)
        or _no_candidates(match)
    )


def _no_match(match: _Match, config: RiskConfig) -> Reason | None:
    """Rule 7: the best face is not even plausible (``FMR₁ > min_match_fmr``)."""
    plausible = match.best_fmr is not None and _at_most(match.best_fmr, config.min_match_fmr)
    return None if plausible else Reason.NO_MATCH


def _no_match_in_bucket(match: _Match, config: RiskConfig) -> Reason | None:
    """Bucket rule: ``N_b · FMR₁`` over the step-up target, or no margin."""
    ok = match.meets(config.step_up_false_charge_target) and match.margin_ok(
        config.margin_fmr_ratio
    )
    return None if ok else Reason.NO_MATCH_IN_BUCKET


def _face_only_step_up(inputs: RiskInput, config: RiskConfig, match: _Match) -> Reason | None:
    """Rules 9-11: why face alone is not enough, or None when it is."""
    if inputs.amount_minor > config.step_up_amount_minor:
        return Reason.AMOUNT_REQUIRES_STEP_UP
    if not match.meets(config.false_charge_target):
        return Reason.GALLERY_TOO_LARGE
    if not match.margin_ok(config.margin_fmr_ratio):
        return Reason.AMBIGUOUS
    return None


def _step_up_method(inputs: RiskInput, config: RiskConfig) -> StepUpMethod:
    """The requested method if the network allows it, else the network's first."""
    preferred = inputs.preferred_step_up
    if preferred is not None and preferred in config.step_up_methods:
        return preferred
    return config.step_up_methods[0]


# --------------------------------------------------------------------------- evidence


def _evidence(inputs: RiskInput, config: RiskConfig, match: _Match, target: float) -> Evidence:
    """The numbers behind a decision, for the audit log (no identities, no templates)."""
    n = inputs.search.gallery_size
    ratio = None
    if match.best_fmr is not None and match.second_fmr is not None:
        ratio = match.second_fmr / match.best_fmr
    return {
        "search": inputs.search.kind,
        "calibration": None if match.best is None else match.best.calibration,
        "gallery_size": n,
        "candidates": len(inputs.search.candidates),
        "best_score": None if match.best is None else match.best.score,
        "best_fmr": match.best_fmr,
        "best_fmr_is_bound": None if match.best is None else int(match.best.fmr_is_bound),
        "second_score": None if match.second is None else match.second.score,
        "second_fmr": match.second_fmr,
        "fmr_ratio": ratio,
        "estimated_false_match": match.estimate,
        "false_charge_target": target,
        "required_fmr": required_fmr(n, target),
        "margin_fmr_ratio": config.margin_fmr_ratio,
        "min_match_fmr": config.min_match_fmr,
        "amount_minor": inputs.amount_minor,
        "currency": inputs.currency,
        "step_up_amount_minor": config.step_up_amount_minor,
        "max_amount_minor": config.max_amount_minor,
        "subject_recent_approvals": inputs.counters.subject_recent_approvals,
        "device_recent_approvals": inputs.counters.device_recent_approvals,
    }


# --------------------------------------------------------------------------- entry points


def decide(inputs: RiskInput, config: RiskConfig | None = None) -> Decision:
    """Decide a checkout with the rules of the search's kind (face-only or bucket)."""
    config = RiskConfig() if config is None else config
    if inputs.search.kind == "bucket":
        return evaluate_step_up(inputs, config)
    return evaluate_face_only(inputs, config)


def evaluate_face_only(inputs: RiskInput, config: RiskConfig | None = None) -> Decision:
    """Apply rules 1-12 (module docstring) to a face-only search of the whole gallery."""
    config = RiskConfig() if config is None else config
    match = _Match.of(inputs.search)
    evidence = _evidence(inputs, config, match, config.false_charge_target)
    declined = (
        _gate(inputs, config, match)
        or _no_match(match, config)
        or _subject_velocity(inputs, config)
    )
    if declined is not None:
        return _decision("declined", declined, None, evidence)
    step_up = _face_only_step_up(inputs, config, match)
    if step_up is not None:
        method = _step_up_method(inputs, config)
        evidence["step_up_method"] = method
        return _decision("step_up", step_up, None, evidence, method)
    return _decision("approved", Reason.FACE_MATCH, _subject(match), evidence)


def evaluate_step_up(inputs: RiskInput, config: RiskConfig | None = None) -> Decision:
    """Decide on the bucket search after a step-up; N is the bucket size."""
    config = RiskConfig() if config is None else config
    match = _Match.of(inputs.search)
    evidence = _evidence(inputs, config, match, config.step_up_false_charge_target)
    declined = (
        _gate(inputs, config, match)
        or _no_match_in_bucket(match, config)
        or _subject_velocity(inputs, config)
    )
    if declined is not None:
        return _decision("declined", declined, None, evidence)
    return _decision("approved", Reason.STEP_UP_MATCH, _subject(match), evidence)


def _subject(match: _Match) -> str:
    """The approved subject (the best candidate)."""
    assert match.best is not None  # every approval path has passed _no_candidates
    return match.best.subject_id


def _decision(
    kind: DecisionKind,
    reason: Reason,
    subject_id: str | None,
    evidence: Evidence,
    method: StepUpMethod | None = None,
) -> Decision:
    """Build a :class:`Decision` of this policy version."""
    return Decision(kind, str(reason), POLICY_VERSION, subject_id, evidence, method)
