"""The authorization ledger: one row per (device, idempotency key), whatever the concurrency;
daily totals and the recent decisions that velocity limits count."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facekey.store.audit import canonical_json
from facekey.store.tables import (
    Authorization,
    new_id,
    utcnow,
)

#: Decisions that count towards velocity limits.
COUNTED_DECISIONS = ("approved", "step_up")


@dataclass(frozen=True)
class DailyTotal:
    """One merchant's authorizations in one currency over one UTC day."""

    merchant_id: str
    currency: str
    approved_count: int
    approved_amount_minor: int
    step_up_count: int
    declined_count: int


def find_authorization(
    session: Session, *, device_id: str, idempotency_key: str
) -> Authorization | None:
    """The ledger row of this device's request with this idempotency key, or None."""
    stmt = select(Authorization).where(
        Authorization.device_id == device_id, Authorization.idempotency_key == idempotency_key
    )
    return session.scalars(stmt.execution_options(populate_existing=True)).first()


def get_authorization(
    session: Session, *, network_id: str, authorization_id: str
) -> Authorization | None:
    """The authorization if it belongs to ``network_id``, else None."""
    stmt = select(Authorization).where(
        Authorization.id == authorization_id, Authorization.network_id == network_id
    )
    return session.scalars(stmt).first()


def _evidence_text(evidence: Mapping[str, Any] | str) -> str:
    return evidence if isinstance(evidence, str) else canonical_json(dict(evidence))


def create_authorization(
    session: Session,
    *,
    network_id: str,
    merchant_id: str,
    store_id: str,
    device_id: str,
    idempotency_key: str,
    request_hash: str,
    status: str,
    decision: str,
    reason: str,
    amount_minor: int,
    currency: str,
    policy_version: str,
    evidence: Mapping[str, Any] | str,
    subject_id: str | None = None,
    customer_pseudonym: str | None = None,
    step_up_method: str | None = None,
    step_up_attempts: int = 0,
    created_at: datetime | None = None,
    decided_at: datetime | None = None,
    latency_ms: float | None = None,
    authorization_id: str | None = None,
) -> Authorization:
    """Insert a ledger row, or return the one already there for (device, idempotency key).

    The insert runs in a savepoint: when a concurrent retry won, its row is returned instead,
    so a key never authorizes twice. Callers tell the two apart by ``result.id`` (pass
    ``authorization_id`` to know yours) and must compare ``result.request_hash`` with theirs: a
    key reused for another request is the caller's error to report. ``evidence`` (scores, FMR,
    gallery size…, never biometric data) is stored as canonical JSON.

    Raises:
        IntegrityError: any other violation (e.g. an unknown merchant or device).
    """
    row = Authorization(
        id=authorization_id or new_id(),
        network_id=network_id,
        merchant_id=merchant_id,
        store_id=store_id,
        device_id=device_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        status=status,
        decision=decision,
        reason=reason,
        amount_minor=amount_minor,
        currency=currency,
        subject_id=subject_id,
        customer_pseudonym=customer_pseudonym,
        policy_version=policy_version,
        evidence=_evidence_text(evidence),
        step_up_method=step_up_method,
        step_up_attempts=step_up_attempts,
        created_at=created_at or utcnow(),
        decided_at=decided_at,
        latency_ms=latency_ms,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = find_authorization(session, device_id=device_id, idempotency_key=idempotency_key)
        if existing is None:
            raise
        return existing
    return row


def update_authorization(
    session: Session, *, authorization: Authorization, **changes: Any
) -> Authorization:
    """Apply ``changes`` (column name → value) to a ledger row, e.g. a step-up's outcome.

    ``evidence`` may be given as a mapping (stored as canonical JSON). The identity columns
    (id, network, merchant, store, device, idempotency key, request hash) cannot change.

    Raises:
        ValueError: an unknown or immutable column.
    """
    immutable = {"id", "network_id", "merchant_id", "store_id", "device_id", "idempotency_key"}
    immutable.add("request_hash")
    columns = set(Authorization.__table__.columns.keys())
    for name, value in changes.items():
        if name not in columns or name in immutable:
            raise ValueError(f"cannot update authorization column {name!r}")
        setattr(authorization, name, _evidence_text(value) if name == "evidence" else value)
    session.flush()
    return authorization


def _count_of(decision: str) -> ColumnElement[int]:
    return func.count(case((Authorization.decision == decision, 1)))


def daily_totals(session: Session, *, network_id: str, day: date) -> list[DailyTotal]:
    """Per merchant and currency, the network's authorizations created on this UTC day."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    approved = Authorization.decision == "approved"
    stmt = (
        select(
            Authorization.merchant_id,
            Authorization.currency,
            _count_of("approved"),
            func.coalesce(func.sum(case((approved, Authorization.amount_minor), else_=0)), 0),
            _count_of("step_up"),
            _count_of("declined"),
        )
        .where(
            Authorization.network_id == network_id,
            Authorization.created_at >= start,
            Authorization.created_at < start + timedelta(days=1),
        )
        .group_by(Authorization.merchant_id, Authorization.currency)
        .order_by(Authorization.merchant_id, Authorization.currency)
    )
    return [
        DailyTotal(row[0], row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5]))
        for row in session.execute(stmt)
    ]


def recent_decisions(
    session: Session,
    *,
    subject_id: str | None = None,
    device_id: str | None = None,
    since: datetime,
) -> int:
    """How many approved or step-up authorizations of the subject and/or device since ``since``.

    Raises:
        ValueError: neither ``subject_id`` nor ``device_id`` was given.
    """
    if subject_id is None and device_id is None:
        raise ValueError("recent_decisions needs a subject_id or a device_id")
    stmt = select(func.count()).where(
        Authorization.created_at >= since, Authorization.decision.in_(COUNTED_DECISIONS)
    )
    if subject_id is not None:
        stmt = stmt.where(Authorization.subject_id == subject_id)
    if device_id is not None:
        stmt = stmt.where(Authorization.device_id == device_id)
    return int(session.scalar(stmt) or 0)
