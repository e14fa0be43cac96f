"""Pay-by-face checkout: one signed terminal call → approved / step_up / declined.

The face is searched in the network's gallery (subjects with payment consent who have not
excluded this merchant), the risk policy (:mod:`facekey.flows.risk`) decides from the
calibrated FMR and the gallery size, and the decision is written to the ledger under the
terminal's idempotency key, so a retried call gets the same answer and never authorizes twice.
A step-up narrows the search to the subjects whose phone number ends in the digits the customer
types (or checks the PIN of the face's best candidate). Approvals return the payment-token
reference, a per-merchant customer id and the personalization payload; never biometric data.

The face is an image, an on-device template, or the best frame of a live liveness session the
same terminal ran just before (:mod:`facekey.flows.liveness`); the session is bound in the
transaction that writes the ledger row, so it pays once. With ``require_liveness`` set, only
sessions are accepted.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy.orm import Session

from facekey.calibration import UNMASKED
from facekey.currencies import is_currency
from facekey.errors import (
    IdempotencyConflict,
    InvalidRequest,
    LivenessRequired,
    NotFound,
    PermissionDenied,
)
from facekey.flows import liveness, risk
from facekey.flows.auth import Principal
from facekey.flows.devices import DeviceIdentity, check_merchant
from facekey.flows.edge import probe_of
from facekey.flows.faces import Probe
from facekey.flows.migration import retemplate_subject
from facekey.flows.personalization import preferences_for
from facekey.flows.platform import Platform
from facekey.flows.protection import open_text
from facekey.flows.search import (
    NetworkSearch,
    SearchProbe,
    network_of,
    recheck_hits,
    search_network,
    subject_candidate,
)
from facekey.gallery.index import Hit
from facekey.security.api_keys import Scope
from facekey.security.pins import verify_pin
from facekey.store import audit, fingerprints, ledger, lockouts, personalization, subjects
from facekey.store.tables import Authorization, Network, Subject, new_id

_DIGITS = re.compile(r"[0-9]{4}")
#: The largest amount a checkout may state (minor units): far above any network's limit,
#: and within every database's integers.
MAX_AMOUNT: Final = 10**12 - 1
STEP_UP_TTL: Final = timedelta(minutes=5)
REPLAY_WINDOW: Final = timedelta(hours=1)


@dataclass(frozen=True)
class CheckoutRequest:
    """What a terminal sends: the sale, and an image or an on-device template."""

    amount_minor: int
    currency: str
    merchant_id: str
    store_id: str
    idempotency_key: str
    image: bytes | None = None
    template: bytes | None = None
    liveness_session_id: str | None = None

    def validate(self) -> None:
        if not 0 < self.amount_minor <= MAX_AMOUNT:
            raise InvalidRequest(
                f"amount must be a positive number of minor units (cents), at most {MAX_AMOUNT}"
            )
        if not is_currency(self.currency):
            raise InvalidRequest("currency must be the ISO 4217 code of a currency, such as EUR")
        if not 1 <= len(self.idempotency_key) <= 200:
            raise InvalidRequest("idempotency_key must be 1 to 200 characters")
        given = (self.image, self.template, self.liveness_session_id)
        if sum(value is not None for value in given) != 1:
            raise InvalidRequest("send exactly one of image, template or liveness_session_id")

    @property
    def probe(self) -> bytes:
        """The probe's bytes as the ledger fingerprints them (a session: its id)."""
        if self.liveness_session_id is not None:
            return b"liveness-session:" + self.liveness_session_id.encode()
        return self.image if self.image is not None else self.template or b""

    def digest(self) -> str:
        """sha256 of the request, to recognise a retry and refuse a reused key."""
        probe = self.probe
        fields = [
            str(self.amount_minor),
            self.currency,
            self.merchant_id,
            self.store_id,
            hashlib.sha256(probe).hexdigest(),
        ]
        return hashlib.sha256("\n".join(fields).encode()).hexdigest()


class StepUpPrompt(BaseModel):
    """What the terminal asks the customer for to finish a step-up."""

    model_config = ConfigDict(frozen=True)

    method: risk.StepUpMethod | None = Field(description="phone_digits or pin")
    digits: int = Field(description="how many digits to ask for")


class CheckoutAnswer(BaseModel):
    """A checkout's decision. Only an approval carries the payment fields and only a step-up
    its prompt; a retried request (same idempotency key) says replayed."""

    model_config = ConfigDict(frozen=True)

    authorization_id: str
    decision: risk.DecisionKind
    reason: str
    policy_version: str
    amount: int = Field(description="minor units (cents)")
    currency: str
    step_up: StepUpPrompt | None = None
    payment_token: str | None = Field(default=None, description="the subject's token reference")
    customer_id: str | None = Field(default=None, description="stable per merchant and subject")
    personalization: dict[str, JsonValue] | None = Field(
        default=None, description="this merchant's preferences, under personalization consent"
    )
    replayed: bool = Field(default=False, description="the answer of an earlier identical call")


class LedgerEntry(BaseModel):
    """An authorization as its merchant sees it: no biometric data, no payment token."""

    model_config = ConfigDict(frozen=True)

    authorization_id: str
    merchant_id: str
    store_id: str
    device_id: str
    decision: risk.DecisionKind
    status: Literal["final", "pending_step_up"]
    reason: str
    amount: int
    currency: str
    policy_version: str
    created_at: str
    latency_ms: float | None
    evidence: dict[str, JsonValue]


class MerchantDay(BaseModel):
    """One merchant's authorizations in one currency over one UTC day."""

    model_config = ConfigDict(frozen=True)

    merchant_id: str
    currency: str
    approved_count: int
    approved_amount_minor: int
    step_up_count: int
    declined_count: int


class DailyTotals(BaseModel):
    """Per merchant and currency: approvals, amounts, step-ups and declines of a UTC day."""

    model_config = ConfigDict(frozen=True)

    day: str
    merchants: list[MerchantDay]


def checkout(
    platform: Platform, principal: Principal, device: DeviceIdentity, request: CheckoutRequest
) -> CheckoutAnswer:
    """Decide a checkout; a retry with the same idempotency key returns the same answer."""
    started = time.perf_counter()
    principal.require(Scope.TERMINAL)
    request.validate()
    if platform.settings.require_liveness and request.liveness_session_id is None:
        raise LivenessRequired("this server accepts checkouts only with a liveness_session_id")
    check_merchant(device, merchant_id=request.merchant_id, store_id=request.store_id)
    digest = request.digest()
    with platform.database.session() as session:
        existing = ledger.find_authorization(
            session, device_id=device.device_id, idempotency_key=request.idempotency_key
        )
        if existing is not None:
            return _replayed_answer(platform, session, existing, digest)
    network = network_of(platform, principal.network_id)
    probe, faces = _checkout_probe(platform, network, device, request)
    found = _search(platform, network, probe, request.merchant_id)
    with platform.database.session() as session:
        decision = _decide_face_only(platform, session, device, request, found)
        best = found.candidates[0].subject_id if found.candidates else None
        candidate = best if decision.decision == "step_up" else None
        mine = new_id()
        row = _record(session, device, request, digest, decision, started, candidate, mine)
        if row.request_hash != digest:  # a concurrent call used the key for another request
            raise IdempotencyConflict("this idempotency key was used for a different request")
        if row.id == mine:  # not a concurrent retry's row
            if request.liveness_session_id is not None:
                liveness.consume(session, request.liveness_session_id)
            _audit(session, row, decision)
            _retemplate(platform, session, network, decision, faces)
        return _answer(platform, session, network, row)


def _checkout_probe(
    platform: Platform, network: Network, device: DeviceIdentity, request: CheckoutRequest
) -> tuple[SearchProbe, Probe | None]:
    """The search probe (the terminal's live session, an image or a template) and, for an
    image, its faces."""
    if request.liveness_session_id is None:
        return probe_of(platform, network, request.image, request.template)
    bound = liveness.live_face(
        platform, network, request.liveness_session_id, device_id=device.device_id
    )
    key = platform.readers.get(network.engine).engine_key
    # The burst's chosen frames, fused at the score level (each counts in N).
    return SearchProbe({key: bound.vectors}, UNMASKED), None


def _retemplate(
    platform: Platform,
    session: Session,
    network: Network,
    decision: risk.Decision,
    faces: Probe | None,
) -> None:
    """An approved customer of a migrating network moves to the new engine's gallery."""
    if decision.decision == "approved" and decision.subject_id and faces is not None:
        retemplate_subject(platform, session, network, decision.subject_id, faces)


def step_up(
    platform: Platform,
    principal: Principal,
    device: DeviceIdentity,
    authorization_id: str,
    *,
    phone_digits: str | None = None,
    pin: str | None = None,
    image: bytes | None = None,
    template: bytes | None = None,
) -> CheckoutAnswer:
    """Finish a pending checkout with the phone's last 4 digits or a PIN."""
    principal.require(Scope.TERMINAL)
    if (phone_digits is None) == (pin is None):
        raise InvalidRequest("send exactly one of phone_digits or pin")
    if phone_digits is not None and not _DIGITS.fullmatch(phone_digits):
        raise InvalidRequest("phone_digits must be the last 4 digits of the phone number")
    network = network_of(platform, principal.network_id)
    with platform.database.session() as session:
        row = _pending(session, principal, device, authorization_id)
        if row.decision != "step_up" or row.status != "pending_step_up":
            return _answer(platform, session, network, row)  # already decided: same answer
    probe, faces = probe_of(platform, network, image, template)
    with platform.database.session() as session:
        row = _pending(session, principal, device, authorization_id)
        if row.status != "pending_step_up":
            return _answer(platform, session, network, row)
        targeted: list[str] = []
        if _expired(row):
            decision = _declined("step_up_expired")
        elif phone_digits is not None:
            decision, targeted = _bucket_decision(
                platform, session, network, row, probe, phone_digits
            )
        else:
            decision = _pin_decision(platform, session, network, row, probe, pin or "")
            targeted = [row.subject_id] if row.subject_id else []
        _finish_step_up(session, row, decision, targeted)
        _retemplate(platform, session, network, decision, faces)
        return _answer(platform, session, network, row)


def authorization(platform: Platform, principal: Principal, authorization_id: str) -> LedgerEntry:
    """A ledger entry for the merchant (no biometric data, no payment token)."""
    principal.require(Scope.TERMINAL)
    with platform.database.session() as session:
        row = ledger.get_authorization(
            session, network_id=principal.network_id, authorization_id=authorization_id
        )
        if row is None:
            raise NotFound(f"no authorization {authorization_id}")
        return _ledger_view(row)


def daily_totals(platform: Platform, principal: Principal, day: str) -> DailyTotals:
    """Per merchant and currency: approvals, amounts, step-ups and declines of a UTC day."""
    principal.require(Scope.ADMIN)
    try:
        date = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).date()
    except ValueError as exc:
        raise InvalidRequest("day must be a date written YYYY-MM-DD") from exc
    if date >= date.max:  # the day's end would be past the last date there is
        raise InvalidRequest("day must be before 9999-12-31")
    with platform.database.session() as session:
        totals = ledger.daily_totals(session, network_id=principal.network_id, day=date)
    return DailyTotals(day=day, merchants=[MerchantDay(**vars(t)) for t in totals])


# ---------------------------------------------------------------------- face-only decision


def _search(
    platform: Platform, network: Network, probe: SearchProbe, merchant_id: str
) -> NetworkSearch:
    """Best candidates with payment consent who have not excluded the merchant; and N."""

    def accept(found: list[Hit]) -> list[Hit]:
        allowed = recheck_hits(platform, network.id, found, purposes=("payment",))
        with platform.database.session() as session:
            return [
                h
                for h in allowed
                if not personalization.is_excluded(
                    session, subject_id=h.subject_id, merchant_id=merchant_id
                )
            ]

    return search_network(platform, network, probe, accept=accept)


def _decide_face_only(
    platform: Platform,
    session: Session,
    device: DeviceIdentity,
    request: CheckoutRequest,
    found: NetworkSearch,
) -> risk.Decision:
    now = datetime.now(UTC)
    config = platform.risk_config
    best = found.candidates[0].subject_id if found.candidates else None
    since = now - timedelta(seconds=config.velocity_window_s)
    counters = risk.Counters(
        subject_recent_approvals=(
            ledger.recent_decisions(session, subject_id=best, since=since) if best else 0
        ),
        device_recent_approvals=ledger.recent_decisions(
            session, device_id=device.device_id, since=since
        ),
    )
    inputs = risk.RiskInput(
        search=found.outcome(),
        amount_minor=request.amount_minor,
        currency=request.currency,
        counters=counters,
        lockout=_lockout(session, device.device_id, best, now),
        replayed_image=_replayed_image(session, device, request, now),
    )
    return risk.decide(inputs, config)


def _lockout(
    session: Session, device_id: str, subject_id: str | None, now: datetime
) -> risk.Lockout:
    def locked(rule: lockouts.LockoutRule, kind: lockouts.Kind, key: str | None) -> bool:
        state = lockouts.lock_state(session, rule, kind=kind, key=key, now=now) if key else None
        return state is not None and state.is_locked(now)

    return risk.Lockout(
        subject_locked=locked(lockouts.CHECKOUT, "subject", subject_id),
        device_locked=locked(lockouts.LIVENESS, "device", device_id),
    )


def _replayed_image(
    session: Session, device: DeviceIdentity, request: CheckoutRequest, now: datetime
) -> bool:
    if request.image is None:
        return False
    return fingerprints.seen_probe(
        session,
        network_id=device.network_id,
        sha256=hashlib.sha256(request.image).hexdigest(),
        device_id=device.device_id,
        now=now,
        window=REPLAY_WINDOW,
    )


def _record(
    session: Session,
    device: DeviceIdentity,
    request: CheckoutRequest,
    digest: str,
    decision: risk.Decision,
    started: float,
    candidate: str | None,
    authorization_id: str,
) -> Authorization:
    """Write the decision to the ledger (a pending step-up remembers the face's candidate)."""
    evidence = dict(decision.evidence) | {"probe": hashlib.sha256(request.probe).hexdigest()}
    pending = decision.decision == "step_up"
    row = ledger.create_authorization(
        session,
        network_id=device.network_id,
        merchant_id=request.merchant_id,
        store_id=request.store_id,
        device_id=device.device_id,
        idempotency_key=request.idempotency_key,
        request_hash=digest,
        status="pending_step_up" if pending else "final",
        decision=decision.decision,
        reason=decision.reason,
        amount_minor=request.amount_minor,
        currency=request.currency,
        policy_version=decision.policy_version,
        evidence=evidence,
        subject_id=decision.subject_id or candidate,
        step_up_method=decision.step_up_method,
        decided_at=datetime.now(UTC),
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        authorization_id=authorization_id,
    )
    return row


# ---------------------------------------------------------------------- step-up


def _pending(
    session: Session, principal: Principal, device: DeviceIdentity, authorization_id: str
) -> Authorization:
    row = ledger.get_authorization(
        session, network_id=principal.network_id, authorization_id=authorization_id
    )
    if row is None:
        raise NotFound(f"no authorization {authorization_id}")
    if row.device_id != device.device_id:
        raise PermissionDenied("a step-up comes from the terminal that started the checkout")
    return row


def _expired(row: Authorization) -> bool:
    return datetime.now(UTC) - row.created_at > STEP_UP_TTL


def _bucket_decision(
    platform: Platform,
    session: Session,
    network: Network,
    row: Authorization,
    probe: SearchProbe,
    digits: str,
) -> tuple[risk.Decision, list[str]]:
    """The decision within the bucket of the typed digits, and the subjects of that bucket.

    N is every template of the bucket's subjects: each is a chance for a stranger's face.
    """
    bucket = subjects.subjects_in_bucket(
        session, network_id=network.id, phone_bucket=platform.vault.phone_bucket(network, digits)
    )
    allowed = subjects.subjects_with_purpose(
        session, network_id=network.id, subject_ids=bucket, purpose="payment"
    )
    readings: list[risk.Candidate] = []
    compared = 0
    for subject_id in sorted(allowed):
        subject = session.get(Subject, subject_id)
        excluded = personalization.is_excluded(
            session, subject_id=subject_id, merchant_id=row.merchant_id
        )
        if subject is None or excluded:
            continue
        reading, templates = subject_candidate(platform, session, subject, probe)
        compared += templates
        readings += [reading] if reading is not None else []
    candidates = risk.rank_candidates(readings)
    decision = _evaluate_bucket(platform, session, row, candidates, max(compared, len(bucket), 1))
    return decision, bucket


def _pin_decision(
    platform: Platform,
    session: Session,
    network: Network,
    row: Authorization,
    probe: SearchProbe,
    pin: str,
) -> risk.Decision:
    candidate = row.subject_id
    subject = (
        subjects.get_subject(session, network_id=network.id, subject_id=candidate)
        if candidate
        else None
    )
    if subject is None or subject.pin_hash is None or not verify_pin(pin, subject.pin_hash):
        return _evaluate_bucket(platform, session, row, (), 1)
    reading, templates = subject_candidate(platform, session, subject, probe)
    candidates = () if reading is None else (reading,)
    return _evaluate_bucket(platform, session, row, candidates, max(templates, 1))


def _evaluate_bucket(
    platform: Platform,
    session: Session,
    row: Authorization,
    candidates: tuple[risk.Candidate, ...],
    bucket_size: int,
) -> risk.Decision:
    now = datetime.now(UTC)
    best = candidates[0].subject_id if candidates else None
    inputs = risk.RiskInput(
        search=risk.SearchOutcome(candidates, bucket_size, "bucket"),
        amount_minor=row.amount_minor,
        currency=row.currency,
        lockout=_lockout(session, row.device_id, best, now),
    )
    return risk.decide(inputs, platform.risk_config)


def _finish_step_up(
    session: Session, row: Authorization, decision: risk.Decision, targeted: list[str]
) -> None:
    """Close the authorization; failed step-ups count against the accounts they targeted."""
    evidence = json.loads(row.evidence) | {"step_up": dict(decision.evidence)}
    ledger.update_authorization(
        session,
        authorization=row,
        status="final",
        decision=decision.decision,
        reason=decision.reason,
        subject_id=decision.subject_id,
        evidence=json.dumps(evidence, sort_keys=True),
        step_up_attempts=row.step_up_attempts + 1,
        decided_at=datetime.now(UTC),
    )
    for subject_id in targeted:
        _count_outcome(session, subject_id, decision)
    _audit(session, row, decision)


# ---------------------------------------------------------------------- answers


def _answer(
    platform: Platform, session: Session, network: Network, row: Authorization
) -> CheckoutAnswer:
    answer = CheckoutAnswer(
        authorization_id=row.id,
        decision=_decision_kind(row.decision),
        reason=row.reason,
        policy_version=row.policy_version,
        amount=row.amount_minor,
        currency=row.currency,
    )
    if row.decision == "step_up":
        method = _STEP_UP_METHODS.get(row.step_up_method or "")
        return answer.model_copy(update={"step_up": StepUpPrompt(method=method, digits=4)})
    if row.decision == "approved" and row.subject_id:
        return answer.model_copy(update=vars(_approval(platform, session, network, row)))
    return answer


@dataclass(frozen=True)
class _Approval:
    """The fields only an approval has (all None once its subject is erased)."""

    payment_token: str | None = None
    customer_id: str | None = None
    personalization: dict[str, JsonValue] | None = None


def _approval(
    platform: Platform, session: Session, network: Network, row: Authorization
) -> _Approval:
    subject = session.get(Subject, row.subject_id)
    if subject is None or subject.status != "active":
        return _Approval()
    key = platform.vault.subject_key(subject)
    token = subject.sealed_payment_token
    return _Approval(
        payment_token=(
            open_text(key, token, subject_id=subject.id, field="payment-token") if token else None
        ),
        customer_id=platform.vault.customer_pseudonym(network, subject.id, row.merchant_id),
        personalization=preferences_for(platform, session, subject, row.merchant_id),
    )


def _replayed_answer(
    platform: Platform, session: Session, row: Authorization, digest: str
) -> CheckoutAnswer:
    if row.request_hash != digest:
        raise IdempotencyConflict("this idempotency key was used for a different request")
    network = network_of(platform, row.network_id)
    return _answer(platform, session, network, row).model_copy(update={"replayed": True})


def _ledger_view(row: Authorization) -> LedgerEntry:
    evidence = json.loads(row.evidence)
    evidence.pop("probe", None)
    return LedgerEntry(
        authorization_id=row.id,
        merchant_id=row.merchant_id,
        store_id=row.store_id,
        device_id=row.device_id,
        decision=_decision_kind(row.decision),
        status="final" if row.status == "final" else "pending_step_up",
        reason=row.reason,
        amount=row.amount_minor,
        currency=row.currency,
        policy_version=row.policy_version,
        created_at=row.created_at.isoformat(),
        latency_ms=row.latency_ms,
        evidence=evidence,
    )


#: The ledger's text columns as their types (the table's check constraints admit no others).
_DECISIONS: Final[dict[str, risk.DecisionKind]] = {
    "approved": "approved",
    "step_up": "step_up",
    "declined": "declined",
}
_STEP_UP_METHODS: Final[dict[str, risk.StepUpMethod]] = {
    "phone_digits": "phone_digits",
    "pin": "pin",
}


def _decision_kind(stored: str) -> risk.DecisionKind:
    return _DECISIONS[stored]


# ---------------------------------------------------------------------- helpers


def _declined(reason: str) -> risk.Decision:
    return risk.Decision("declined", reason, risk.POLICY_VERSION, None, {})


def _count_outcome(session: Session, subject_id: str, decision: risk.Decision) -> None:
    """Consecutive failed step-ups against an account (the subjects the typed digits or the
    PIN point to) lock it for a while, longer with each further failure
    (:data:`~facekey.store.lockouts.CHECKOUT`); a success resets the count. Terminals are not
    locked by strangers' failures: their velocity limit throttles them."""
    if decision.decision == "approved" and decision.subject_id == subject_id:
        lockouts.record_success(session, lockouts.CHECKOUT, kind="subject", key=subject_id)
    elif decision.decision == "declined" and decision.reason == "no_match_in_bucket":
        lockouts.record_failure(
            session, lockouts.CHECKOUT, kind="subject", key=subject_id, now=datetime.now(UTC)
        )


def _audit(session: Session, row: Authorization, decision: risk.Decision) -> None:
    pseudonym = None
    if decision.subject_id:
        subject = session.get(Subject, decision.subject_id)
        pseudonym = subject.pseudonym if subject else None
    audit.append_event(
        session,
        network_id=row.network_id,
        actor=row.device_id,
        action="checkout",
        subject_pseudonym=pseudonym,
        outcome=decision.decision,
        details={
            "authorization_id": row.id,
            "reason": decision.reason,
            "policy_version": decision.policy_version,
            "amount": row.amount_minor,
            "currency": row.currency,
        },
    )
