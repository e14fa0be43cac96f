"""The checkout risk policy: every rule and reason, its order, and the union-bound math."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from importlib import resources
from typing import Any

import pytest

from facekey.calibration import CalibrationTable
from facekey.flows.risk import (
    POLICY_VERSION,
    Counters,
    Decision,
    Lockout,
    Reason,
    RiskConfig,
    RiskInput,
    SearchOutcome,
    decide,
    estimated_false_match,
    evaluate_face_only,
    evaluate_step_up,
    margin_holds,
    max_face_only_gallery,
    rank_candidates,
    read_candidates,
    required_fmr,
)

# log10(FMR) falls by one per 0.1 of score from 0.5 to 0.9, then 1e-6 at 0.95, 1e-8 at 0.99.
HAND = CalibrationTable(
    engine="hand",
    engine_version="1",
    impostor_pairs=100_000_000,
    genuine_pairs=1000,
    points=(
        (0.5, 1e-1, 0.0),
        (0.6, 1e-2, 0.01),
        (0.7, 1e-3, 0.05),
        (0.8, 1e-4, 0.1),
        (0.9, 1e-5, 0.2),
        (0.95, 1e-6, 0.4),
        (0.99, 1e-8, 0.9),
    ),
)


@pytest.fixture(scope="module")
def shipped() -> CalibrationTable:
    resource = resources.files("facekey.calibrations") / "dlib-resnet-v1-1.json"
    return CalibrationTable.from_json(resource.read_text(encoding="utf-8"))


def _search(
    candidates: tuple[tuple[str, float], ...],
    gallery_size: int,
    kind: Any = "face_only",
    table: CalibrationTable = HAND,
) -> SearchOutcome:
    """The hits read through ``table``, in the order given (validation is the point)."""
    read = tuple(c for hit in candidates for c in read_candidates([hit], table))
    return SearchOutcome(read, gallery_size, kind)


def _inputs(
    candidates: tuple[tuple[str, float], ...] = (("alice", 0.99), ("bob", 0.6)),
    gallery_size: int = 10,
    *,
    kind: Any = "face_only",
    amount: int = 500,
    currency: str = "EUR",
    table: CalibrationTable = HAND,
    **extra: Any,
) -> RiskInput:
    return RiskInput(_search(candidates, gallery_size, kind, table), amount, currency, **extra)


def _check(decision: Decision, kind: str, reason: Reason, subject: str | None = None) -> Decision:
    assert (decision.decision, decision.reason) == (kind, str(reason))
    assert decision.subject_id == subject
    assert decision.policy_version == POLICY_VERSION == "risk-2"
    return decision


# --------------------------------------------------------------------------- the math


def test_estimated_false_match_is_the_capped_union_bound() -> None:
    assert estimated_false_match(10, 1e-6) == pytest.approx(1e-5)
    assert estimated_false_match(1000, 0.01) == 1.0
    assert estimated_false_match(0, 0.5) == 0.0
    assert required_fmr(100_000, 1e-5) == pytest.approx(1e-10)
    assert required_fmr(0, 1e-5) == 1e-5


def test_margin_definition() -> None:
    assert margin_holds(1e-8, None, 100.0)
    assert margin_holds(1e-8, 1e-6, 100.0)  # exactly 100x: holds
    assert not margin_holds(1e-8, 0.99e-6, 100.0)
    assert margin_holds(1e-8, 1e-8, 1.0)


def test_max_face_only_gallery() -> None:
    assert max_face_only_gallery(HAND, 1e-5) == 1000
    assert max_face_only_gallery(HAND, 1e-3) == 100_000


# --------------------------------------------------------------------------- face-only rules


FACE_ONLY_CASES: list[tuple[str, dict[str, Any], str, Reason, str | None]] = [
    ("perfect match", {}, "approved", Reason.FACE_MATCH, "alice"),
    # 10 x 1e-6 = 1e-5: exactly at the target passes.
    ("at target", {"candidates": (("alice", 0.95),)}, "approved", Reason.FACE_MATCH, "alice"),
    (
        "one subject more",
        {"candidates": (("alice", 0.95),), "gallery_size": 11},
        "step_up",
        Reason.GALLERY_TOO_LARGE,
        None,
    ),
    (
        "weak but plausible",
        {"candidates": (("alice", 0.6),)},
        "step_up",
        Reason.GALLERY_TOO_LARGE,
        None,
    ),
    (
        # 0.98 sits at FMR 10^-7.5, only ~3x above the best's 1e-8.
        "twin",
        {"candidates": (("alice", 0.99), ("twin", 0.98))},
        "step_up",
        Reason.AMBIGUOUS,
        None,
    ),
    (
        # 0.95 is 1e-6 = 100x the best's 1e-8: the margin holds exactly.
        "runner-up at margin",
        {"candidates": (("alice", 0.99), ("bob", 0.95))},
        "approved",
        Reason.FACE_MATCH,
        "alice",
    ),
    ("amount at step-up limit", {"amount": 10_000}, "approved", Reason.FACE_MATCH, "alice"),
    ("amount above", {"amount": 10_001}, "step_up", Reason.AMOUNT_REQUIRES_STEP_UP, None),
    ("amount at max", {"amount": 100_000}, "step_up", Reason.AMOUNT_REQUIRES_STEP_UP, None),
    ("amount over max", {"amount": 100_001}, "declined", Reason.AMOUNT_OVER_LIMIT, None),
    ("no candidates", {"candidates": ()}, "declined", Reason.NO_CANDIDATES, None),
    (
        "empty gallery",
        {"candidates": (), "gallery_size": 0},
        "declined",
        Reason.NO_CANDIDATES,
        None,
    ),
    ("weak face", {"candidates": (("alice", 0.55),)}, "declined", Reason.NO_MATCH, None),
    ("below table", {"candidates": (("alice", 0.2),)}, "declined", Reason.NO_MATCH, None),
    (
        "device locked",
        {"lockout": Lockout(device_locked=True)},
        "declined",
        Reason.LOCKED_OUT,
        None,
    ),
    (
        "subject locked",
        {"lockout": Lockout(subject_locked=True)},
        "declined",
        Reason.LOCKED_OUT,
        None,
    ),
    ("replay", {"replayed_image": True}, "declined", Reason.REPLAYED_IMAGE, None),
    (
        "device velocity",
        {"counters": Counters(device_recent_approvals=120)},
        "declined",
        Reason.VELOCITY_DEVICE,
        None,
    ),
    (
        "device velocity below",
        {"counters": Counters(device_recent_approvals=119)},
        "approved",
        Reason.FACE_MATCH,
        "alice",
    ),
    (
        "subject velocity",
        {"counters": Counters(subject_recent_approvals=10)},
        "declined",
        Reason.VELOCITY_SUBJECT,
        None,
    ),
    (
        "subject velocity below",
        {"counters": Counters(subject_recent_approvals=9)},
        "approved",
        Reason.FACE_MATCH,
        "alice",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "kind", "reason", "subject"),
    [case[1:] for case in FACE_ONLY_CASES],
    ids=[case[0] for case in FACE_ONLY_CASES],
)
def test_face_only_rules(
    overrides: dict[str, Any], kind: str, reason: Reason, subject: str | None
) -> None:
    decision = decide(_inputs(**overrides))
    _check(decision, kind, reason, subject)
    assert decision.step_up_method == ("phone_digits" if kind == "step_up" else None)
    assert evaluate_face_only(_inputs(**overrides)) == decision


def test_currency_is_checked_only_when_configured() -> None:
    config = RiskConfig(currency="EUR")
    _check(decide(_inputs(currency="EUR"), config), "approved", Reason.FACE_MATCH, "alice")
    _check(decide(_inputs(currency="USD"), config), "declined", Reason.CURRENCY_NOT_ACCEPTED)
    _check(decide(_inputs(currency="USD")), "approved", Reason.FACE_MATCH, "alice")


@pytest.mark.parametrize(
    ("methods", "preferred", "expected"),
    [
        (("phone_digits", "pin"), None, "phone_digits"),
        (("phone_digits", "pin"), "pin", "pin"),
        (("phone_digits",), "pin", "phone_digits"),
        (("pin",), None, "pin"),
        (("pin", "phone_digits"), "phone_digits", "phone_digits"),
    ],
)
def test_step_up_method(methods: Any, preferred: Any, expected: str) -> None:
    config = RiskConfig(step_up_methods=methods)
    decision = decide(_inputs(amount=20_000, preferred_step_up=preferred), config)
    assert decision.decision == "step_up"
    assert decision.step_up_method == expected
    assert decision.evidence["step_up_method"] == expected


def test_step_up_reasons_order() -> None:
    # Large amount, too large a gallery and ambiguous candidates at once: amount first.
    twins = (("alice", 0.99), ("twin", 0.985))
    _check(
        decide(_inputs(twins, 10_000, amount=50_000)),
        "step_up",
        Reason.AMOUNT_REQUIRES_STEP_UP,
    )
    _check(decide(_inputs(twins, 10_000)), "step_up", Reason.GALLERY_TOO_LARGE)
    _check(decide(_inputs(twins, 10)), "step_up", Reason.AMBIGUOUS)


def test_decline_priority() -> None:
    """Lockout before everything, then replay, currency, amount, device velocity, ..."""
    config = RiskConfig(currency="EUR")
    worst = _inputs(
        (),
        currency="USD",
        amount=1_000_000,
        lockout=Lockout(subject_locked=True, device_locked=True),
        replayed_image=True,
        counters=Counters(subject_recent_approvals=99, device_recent_approvals=999),
    )
    steps: list[tuple[dict[str, Any], Reason]] = [
        ({}, Reason.LOCKED_OUT),
        ({"lockout": Lockout()}, Reason.REPLAYED_IMAGE),
        ({"replayed_image": False}, Reason.CURRENCY_NOT_ACCEPTED),
        ({"currency": "EUR"}, Reason.AMOUNT_OVER_LIMIT),
        ({"amount_minor": 500}, Reason.VELOCITY_DEVICE),
        ({"counters": Counters(subject_recent_approvals=99)}, Reason.NO_CANDIDATES),
        ({"search": _search((("alice", 0.55),), 10)}, Reason.NO_MATCH),
        ({"search": _search((("alice", 0.99),), 10)}, Reason.VELOCITY_SUBJECT),
    ]
    current = worst
    for change, reason in steps:
        current = replace(current, **change)
        _check(decide(current, config), "declined", reason)
        # The bucket search declines in the same order (no_match_in_bucket for no_match).
        bucket = replace(current, search=replace(current.search, kind="bucket", gallery_size=1))
        expected = Reason.NO_MATCH_IN_BUCKET if reason is Reason.NO_MATCH else reason
        _check(decide(bucket, config), "declined", expected)
    final = replace(current, counters=Counters())
    _check(decide(final, config), "approved", Reason.FACE_MATCH, "alice")


def test_a_decline_beats_any_step_up() -> None:
    locked = _inputs(amount=50_000, gallery_size=1_000_000, lockout=Lockout(device_locked=True))
    _check(decide(locked), "declined", Reason.LOCKED_OUT)


# --------------------------------------------------------------------------- bucket rules

#: The bucket rules with a step-up target of 1e-5 (the default is 1e-3, docs/risk-policy.md).
STRICT = RiskConfig(step_up_false_charge_target=1e-5)


BUCKET_CASES: list[tuple[str, dict[str, Any], str, Reason, str | None]] = [
    (
        "unique bucket",
        {"candidates": (("alice", 0.9),), "gallery_size": 1},
        "approved",
        Reason.STEP_UP_MATCH,
        "alice",
    ),
    (
        "bucket of two",
        {"candidates": (("alice", 0.9),), "gallery_size": 2},
        "declined",
        Reason.NO_MATCH_IN_BUCKET,
        None,
    ),
    (
        "bucket of ten",
        {"candidates": (("alice", 0.95), ("bob", 0.6)), "gallery_size": 10},
        "approved",
        Reason.STEP_UP_MATCH,
        "alice",
    ),
    (
        "ambiguous bucket",
        {"candidates": (("alice", 0.99), ("twin", 0.98)), "gallery_size": 2},
        "declined",
        Reason.NO_MATCH_IN_BUCKET,
        None,
    ),
    (
        "weak face in bucket",
        {"candidates": (("alice", 0.6),), "gallery_size": 1},
        "declined",
        Reason.NO_MATCH_IN_BUCKET,
        None,
    ),
    ("empty bucket", {"candidates": (), "gallery_size": 0}, "declined", Reason.NO_CANDIDATES, None),
    (
        "large amount is fine after step-up",
        {"amount": 100_000},
        "approved",
        Reason.STEP_UP_MATCH,
        "alice",
    ),
    ("amount over max", {"amount": 100_001}, "declined", Reason.AMOUNT_OVER_LIMIT, None),
    ("locked", {"lockout": Lockout(subject_locked=True)}, "declined", Reason.LOCKED_OUT, None),
    ("replay", {"replayed_image": True}, "declined", Reason.REPLAYED_IMAGE, None),
    (
        "device velocity",
        {"counters": Counters(device_recent_approvals=120)},
        "declined",
        Reason.VELOCITY_DEVICE,
        None,
    ),
    (
        "subject velocity",
        {"counters": Counters(subject_recent_approvals=10)},
        "declined",
        Reason.VELOCITY_SUBJECT,
        None,
    ),
]


@pytest.mark.parametrize(
    ("overrides", "kind", "reason", "subject"),
    [case[1:] for case in BUCKET_CASES],
    ids=[case[0] for case in BUCKET_CASES],
)
def test_bucket_rules(
    overrides: dict[str, Any], kind: str, reason: Reason, subject: str | None
) -> None:
    base: dict[str, Any] = {"gallery_size": 3, "kind": "bucket"}
    inputs = _inputs(**(base | overrides))
    decision = decide(inputs, STRICT)
    _check(decision, kind, reason, subject)
    assert decision.step_up_method is None
    assert decision.evidence["search"] == "bucket"
    assert evaluate_step_up(inputs, STRICT) == decision


def test_bucket_uses_its_own_target() -> None:
    inputs = _inputs((("alice", 0.9),), 5, kind="bucket")  # 5 x 1e-5 = 5e-5
    _check(decide(inputs, STRICT), "declined", Reason.NO_MATCH_IN_BUCKET)
    loose = RiskConfig(step_up_false_charge_target=1e-4, false_charge_target=1e-9)
    decision = _check(decide(inputs, loose), "approved", Reason.STEP_UP_MATCH, "alice")
    assert decision.evidence["false_charge_target"] == 1e-4


# --------------------------------------------------------------------------- properties

_RANK = {"declined": 0, "step_up": 1, "approved": 2}


@pytest.mark.parametrize("score", [0.9, 0.93, 0.95, 0.97, 0.99, 1.0])
def test_growing_gallery_flips_approved_to_step_up(score: float) -> None:
    fmr = HAND.fmr_at(score)
    limit = math.floor(1e-5 / fmr * (1 + 1e-9))  # the largest N that may be approved
    kinds = [
        decide(_inputs((("alice", score),), n)).decision
        for n in sorted({1, 2, 5, 10, 100, 1000, 10_000, limit, limit + 1})
        if n >= 1
    ]
    assert kinds == sorted(kinds, key=_RANK.__getitem__, reverse=True)  # never back up
    assert decide(_inputs((("alice", score),), limit)).decision == "approved"
    over = decide(_inputs((("alice", score),), limit + 1))
    _check(over, "step_up", Reason.GALLERY_TOO_LARGE)


def test_higher_amount_never_gives_a_better_decision() -> None:
    amounts = [0, 1, 9_999, 10_000, 10_001, 50_000, 100_000, 100_001, 10**9]
    kinds = [decide(_inputs(amount=amount)).decision for amount in amounts]
    assert kinds == ["approved"] * 4 + ["step_up"] * 3 + ["declined"] * 2


def test_higher_score_never_gives_a_worse_decision() -> None:
    for n in (1, 10, 1000, 10**6):
        ranks = [_RANK[decide(_inputs((("alice", s / 200),), n)).decision] for s in range(0, 201)]
        assert ranks == sorted(ranks), n


def test_estimated_false_match_in_evidence_is_n_times_fmr() -> None:
    rng = random.Random(20240607)
    for _ in range(300):
        score = rng.uniform(0.4, 1.0)
        n = rng.choice([1, 3, 10, 77, 1000, 123_456, 10**7])
        kind = rng.choice(["face_only", "bucket"])
        decision = decide(_inputs((("alice", score),), n, kind=kind))
        fmr = 1.0 if score < 0.5 else HAND.fmr_at(score)
        assert decision.evidence["best_fmr"] == pytest.approx(fmr)
        assert decision.evidence["estimated_false_match"] == pytest.approx(min(1.0, n * fmr))
        assert decision.evidence["gallery_size"] == n


def test_subject_only_on_approval_and_evidence_is_flat() -> None:
    rng = random.Random(7)
    keys: set[str] | None = None
    for _ in range(200):
        first = rng.uniform(0.5, 1.0)
        second = rng.uniform(0.4, first)
        n = rng.choice([2, 10, 100, 10**5])
        inputs = _inputs(
            (("alice", first), ("bob", second)),
            n,
            kind=rng.choice(["face_only", "bucket"]),
            amount=rng.choice([100, 20_000, 200_000]),
        )
        decision = decide(inputs)
        assert (decision.subject_id is not None) == (decision.decision == "approved")
        assert all(
            isinstance(v, float | int | str | type(None)) for v in decision.evidence.values()
        )
        assert decision.reason in {str(reason) for reason in Reason}
        current = set(decision.evidence) - {"step_up_method"}
        keys = current if keys is None else keys
        assert current == keys  # the same evidence keys every time
    assert keys is not None
    for needed in (
        "best_score",
        "best_fmr",
        "second_score",
        "second_fmr",
        "gallery_size",
        "estimated_false_match",
        "required_fmr",
        "min_match_fmr",
        "calibration",
        "false_charge_target",
    ):
        assert needed in keys


def test_evidence_without_candidates() -> None:
    evidence = decide(_inputs(())).evidence
    for key in ("best_score", "best_fmr", "second_score", "second_fmr", "estimated_false_match"):
        assert evidence[key] is None
    assert evidence["gallery_size"] == 10


def test_evidence_thresholds() -> None:
    evidence = decide(_inputs(gallery_size=10)).evidence
    assert evidence["required_fmr"] == pytest.approx(1e-6)
    assert evidence["min_match_fmr"] == pytest.approx(1e-2)
    assert evidence["calibration"] == "hand/1/no-mask/no-mask"
    assert evidence["fmr_ratio"] == pytest.approx(1e-2 / 1e-8)
    assert evidence["best_fmr_is_bound"] == 1  # 0.99 is the table's top point
    beyond = decide(_inputs(gallery_size=10**6)).evidence
    assert beyond["required_fmr"] == pytest.approx(1e-11)
    assert beyond["estimated_false_match"] == pytest.approx(10**6 * 1e-8)


# --------------------------------------------------------------------------- shipped table


def test_shipped_table_cannot_approve_face_only_at_100k(shipped: CalibrationTable) -> None:
    """At N = 100 000 face-only approval needs FMR <= 1e-10; the table vouches for ~8e-8."""
    assert required_fmr(100_000, 1e-5) == pytest.approx(1e-10)
    assert 7e-8 < shipped.min_fmr < 9e-8
    assert required_fmr(100_000, 1e-5) < shipped.min_fmr
    for score in (shipped.points[-1][0], 0.999, 1.0):
        decision = decide(_inputs((("alice", score),), 100_000, table=shipped))
        _check(decision, "step_up", Reason.GALLERY_TOO_LARGE)
        assert decision.evidence["required_fmr"] < shipped.min_fmr
        assert decision.evidence["best_fmr_is_bound"] == 1
        assert decision.evidence["estimated_false_match"] == pytest.approx(
            100_000 * shipped.min_fmr
        )


def test_shipped_table_face_only_limit(shipped: CalibrationTable) -> None:
    limit = max_face_only_gallery(shipped, 1e-5)
    assert limit == 124
    top = shipped.points[-1][0]
    _check(decide(_inputs((("a", top),), limit, table=shipped)), "approved", Reason.FACE_MATCH, "a")
    _check(
        decide(_inputs((("a", top),), limit + 1, table=shipped)),
        "step_up",
        Reason.GALLERY_TOO_LARGE,
    )


@pytest.mark.parametrize(("n", "fmr"), [(1, 1e-5), (10, 1e-6), (100, 1e-7)])
def test_shipped_table_thresholds(shipped: CalibrationTable, n: int, fmr: float) -> None:
    threshold = shipped.threshold_for(fmr)
    at = decide(_inputs((("a", threshold),), n, table=shipped))
    _check(at, "approved", Reason.FACE_MATCH, "a")
    assert at.evidence["best_fmr"] == pytest.approx(fmr)
    below = decide(_inputs((("a", threshold - 1e-4),), n, table=shipped))
    _check(below, "step_up", Reason.GALLERY_TOO_LARGE)


def test_shipped_table_step_up_restores_approval(shipped: CalibrationTable) -> None:
    """100 000 subjects, four phone digits: a bucket of about 10 is approved at FMR 1e-6."""
    score = shipped.threshold_for(1e-6)
    face_only = decide(_inputs((("alice", score), ("bob", 0.9)), 100_000, table=shipped))
    _check(face_only, "step_up", Reason.GALLERY_TOO_LARGE)
    bucket = _inputs((("alice", score), ("bob", 0.9)), 10, kind="bucket", table=shipped)
    _check(decide(bucket), "approved", Reason.STEP_UP_MATCH, "alice")


def test_shipped_table_weak_genuine_gets_a_step_up(shipped: CalibrationTable) -> None:
    plausible = shipped.threshold_for(1e-2)
    _check(
        decide(_inputs((("a", plausible),), 100_000, table=shipped)),
        "step_up",
        Reason.GALLERY_TOO_LARGE,
    )
    weak = decide(_inputs((("a", plausible - 0.005),), 100_000, table=shipped))
    _check(weak, "declined", Reason.NO_MATCH)
    below_table = decide(_inputs((("a", 0.5),), 100_000, table=shipped))
    _check(below_table, "declined", Reason.NO_MATCH)
    assert below_table.evidence["best_fmr"] == 1.0


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("candidates", "size", "kind"),
    [
        ((("a", 0.5), ("b", 0.9)), 10, "face_only"),  # not best first
        ((("a", 0.9), ("a", 0.8)), 10, "face_only"),  # one subject twice
        ((("", 0.9),), 10, "face_only"),
        ((("a", float("nan")),), 10, "face_only"),
        ((("a", 0.9), ("b", 0.8)), 1, "face_only"),  # more candidates than searched
        ((), 10, "everything"),
    ],
)
def test_search_outcome_validation(candidates: Any, size: int, kind: Any) -> None:
    with pytest.raises(ValueError):
        _search(candidates, size, kind)


@pytest.mark.parametrize(("amount", "currency"), [(-1, "EUR"), (5, "eur"), (5, "EURO")])
def test_risk_input_validation(amount: int, currency: str) -> None:
    with pytest.raises(ValueError):
        RiskInput(SearchOutcome((), 1), amount, currency)


@pytest.mark.parametrize(
    "settings",
    [
        {"false_charge_target": 0.0},
        {"step_up_false_charge_target": 2.0},
        {"min_match_fmr": -1.0},
        {"margin_fmr_ratio": 0.5},
        {"step_up_amount_minor": 200_000},
        {"max_subject_approvals": -1},
        {"step_up_methods": ()},
        {"currency": "euro"},
    ],
)
def test_config_validation(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RiskConfig(**settings)


def test_defaults() -> None:
    config = RiskConfig()
    assert config.false_charge_target == 1e-5
    assert config.step_up_false_charge_target == 1e-3
    assert config.margin_fmr_ratio == 100.0
    assert config.min_match_fmr == 1e-2
    assert config.step_up_amount_minor == 10_000
    assert config.max_amount_minor == 100_000
    assert (config.max_subject_approvals, config.max_device_approvals) == (10, 120)
    assert config.velocity_window_s == 3600
    assert config.step_up_methods[0] == "phone_digits"


# --------------------------------------------------------------------------- several tables


LOOSE = replace(HAND, engine="loose", points=tuple((s - 0.1, f, n) for s, f, n in HAND.points))


def test_candidates_of_two_tables_are_ranked_by_fmr() -> None:
    """0.85 on a table shifted down by 0.1 reads 1e-6 and beats 0.89 on HAND (~1.3e-5)."""
    mixed = rank_candidates(
        read_candidates([("alice", 0.89)], HAND) + read_candidates([("bob", 0.85)], LOOSE)
    )
    assert [c.subject_id for c in mixed] == ["bob", "alice"]
    assert [c.calibration for c in mixed] == ["loose/1/no-mask/no-mask", "hand/1/no-mask/no-mask"]
    decision = decide(RiskInput(SearchOutcome(mixed, 2, "bucket"), 500, "EUR"))
    _check(decision, "declined", Reason.NO_MATCH_IN_BUCKET)  # 1.3e-5 / 1e-6 < 100: no margin
    assert decision.evidence["calibration"] == "loose/1/no-mask/no-mask"


def test_one_subject_in_two_tables_keeps_its_best_reading() -> None:
    both = rank_candidates(
        read_candidates([("alice", 0.7)], HAND) + read_candidates([("alice", 0.9)], LOOSE)
    )
    assert len(both) == 1
    assert both[0].fmr == pytest.approx(LOOSE.fmr_at(0.9))
