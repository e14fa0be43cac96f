"""Storage for pay-by-face checkout: signed terminal calls, the ledger, lockouts, personalization.

- Request nonces: a terminal's nonce is accepted once (replay protection of signed calls).
- Devices: names, disabling, listing; merchants: listing.
- The authorization ledger: one row per (device, idempotency key), whatever the concurrency.
- Failure counters (lockout after consecutive failures) and probe fingerprints (exact replays).
- Merchant exclusions, sealed per-merchant preferences and the subject's PIN hash.

Inserts that may collide run in a SAVEPOINT and catch the unique violation, so concurrent
duplicates are detected by the database on both backends. Read-modify-write upserts first "touch"
the row with a no-op ``UPDATE``: it row-locks it on PostgreSQL and takes the write lock on SQLite
before anything is read, so concurrent writers serialise instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, SessionTransaction

from facekey.store.audit import canonical_json
from facekey.store.tables import (
    Authorization,
    Base,
    Device,
    FailureCounter,
    Merchant,
    MerchantExclusion,
    Preference,
    ProbeFingerprint,
    RequestNonce,
    Subject,
    new_id,
    utcnow,
)

#: Decisions that count towards velocity limits.
COUNTED_DECISIONS = ("approved", "step_up")


# --- transaction helpers --------------------------------------------------------------------


def _savepoint(session: Session) -> SessionTransaction:
    """``session.begin_nested()``, made safe on SQLite.

    pysqlite does not emit ``BEGIN`` before a ``SAVEPOINT``: a savepoint opened first would start
    (and its release commit) a transaction of its own, outside the caller's. Open it first.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if not getattr(raw, "in_transaction", True):
            connection.exec_driver_sql("BEGIN")
    return session.begin_nested()


def _insert(session: Session, row: Base) -> bool:
    """Insert ``row`` in a savepoint; False (and the row discarded) on an integrity violation."""
    try:
        with _savepoint(session):
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True


def _touch(
    session: Session, column: InstrumentedAttribute[Any], *where: ColumnElement[bool]
) -> bool:
    """No-op ``UPDATE`` of the rows matching ``where``: lock them; True when there is one."""
    stmt = (
        update(column.class_)
        .where(*where)
        .values({column.key: column})
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount) > 0  # type: ignore[attr-defined]


def _rowcount(session: Session, stmt: Any) -> int:
    """Execute a DML statement; the number of rows it matched."""
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


# --- request nonces -------------------------------------------------------------------------


def remember_nonce(session: Session, *, device_id: str, nonce: str, seen_at: datetime) -> bool:
    """Record a signed request's nonce; False when the device already used it (a replay)."""
    return _insert(session, RequestNonce(device_id=device_id, nonce=nonce, seen_at=seen_at))


def prune_nonces(session: Session, *, older_than: datetime) -> int:
    """Forget nonces seen before ``older_than`` (outside the replay window); how many."""
    stmt = delete(RequestNonce).where(RequestNonce.seen_at < older_than)
    return _rowcount(session, stmt.execution_options(synchronize_session=False))


# --- merchants and devices ------------------------------------------------------------------


def list_merchants(session: Session, *, network_id: str) -> list[Merchant]:
    """The network's merchants, oldest first."""
    stmt = (
        select(Merchant)
        .where(Merchant.network_id == network_id)
        .order_by(Merchant.created_at, Merchant.id)
    )
    return list(session.scalars(stmt))


def list_devices(session: Session, *, network_id: str) -> list[Device]:
    """The network's devices, disabled ones included, oldest first."""
    stmt = (
        select(Device).where(Device.network_id == network_id).order_by(Device.created_at, Device.id)
    )
    return list(session.scalars(stmt))


def _network_device(session: Session, *, network_id: str, device_id: str) -> Device | None:
    stmt = select(Device).where(Device.id == device_id, Device.network_id == network_id)
    return session.scalars(stmt).first()


def disable_device(session: Session, *, network_id: str, device_id: str) -> bool:
    """Disable a device for good (``enabled`` False, ``disabled_at`` set once).

    Returns False when the network has no such device; disabling twice is a no-op.
    """
    device = _network_device(session, network_id=network_id, device_id=device_id)
    if device is None:
        return False
    if device.enabled or device.disabled_at is None:
        device.enabled = False
        device.disabled_at = device.disabled_at or utcnow()
        session.flush()
    return True


def rename_device(session: Session, *, network_id: str, device_id: str, name: str | None) -> bool:
    """Set a device's display name; False when the network has no such device."""
    device = _network_device(session, network_id=network_id, device_id=device_id)
    if device is None:
        return False
    device.name = name
    session.flush()
    return True


# --- the authorization ledger ---------------------------------------------------------------


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
        with _savepoint(session):
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


# --- failure counters -----------------------------------------------------------------------


@dataclass(frozen=True)
class FailureState:
    """Consecutive failures of a subject or device and the end of its lockout, if any."""

    consecutive: int
    locked_until: datetime | None

    def is_locked(self, now: datetime) -> bool:
        """Whether the lockout is still running at ``now``."""
        return self.locked_until is not None and self.locked_until > now


def _counter_key(kind: str, key: str) -> ColumnElement[bool]:
    return and_(FailureCounter.kind == kind, FailureCounter.key == key)


def _locked_counter(session: Session, *, kind: str, key: str, now: datetime) -> FailureCounter:
    """The counter row, locked, created (at zero) when missing."""
    if not _touch(session, FailureCounter.consecutive, _counter_key(kind, key)):
        row = FailureCounter(kind=kind, key=key, consecutive=0, updated_at=now)
        if _insert(session, row):
            return row
        _touch(session, FailureCounter.consecutive, _counter_key(kind, key))
    return session.get_one(FailureCounter, (kind, key), populate_existing=True)


def record_failure(
    session: Session, *, kind: str, key: str, lock_after: int, lock_for: timedelta, now: datetime
) -> FailureState:
    """Count one more consecutive failure of ``kind`` ("subject" or "device") ``key``.

    From the ``lock_after``-th consecutive failure on, each failure (re)starts a lockout of
    ``lock_for`` from ``now``; only :func:`record_success` resets the count.
    """
    counter = _locked_counter(session, kind=kind, key=key, now=now)
    counter.consecutive += 1
    counter.updated_at = now
    if counter.consecutive >= lock_after:
        counter.locked_until = now + lock_for
    session.flush()
    return FailureState(counter.consecutive, counter.locked_until)


def record_success(session: Session, *, kind: str, key: str) -> None:
    """Reset the consecutive failures (and any lockout) of ``kind`` ``key``."""
    stmt = delete(FailureCounter).where(_counter_key(kind, key))
    session.execute(stmt.execution_options(synchronize_session=False))


def lock_state(session: Session, *, kind: str, key: str, now: datetime) -> FailureState | None:
    """The failure state of ``kind`` ``key``, or None without failures.

    ``now`` is compared with the lockout: an expired one is reported as ``locked_until`` None.
    """
    stmt = select(FailureCounter.consecutive, FailureCounter.locked_until).where(
        _counter_key(kind, key)
    )
    row = session.execute(stmt).first()
    if row is None:
        return None
    locked_until = row.locked_until if row.locked_until and row.locked_until > now else None
    return FailureState(row.consecutive, locked_until)


# --- probe fingerprints ---------------------------------------------------------------------


def seen_probe(
    session: Session,
    *,
    network_id: str,
    sha256: str,
    device_id: str,
    now: datetime,
    window: timedelta,
) -> bool:
    """True when these exact image bytes were seen in the network within ``window`` before now.

    Either way the fingerprint is recorded as seen ``now`` by ``device_id``.
    """
    where = and_(ProbeFingerprint.network_id == network_id, ProbeFingerprint.sha256 == sha256)
    if not _touch(session, ProbeFingerprint.seen_at, where):
        row = ProbeFingerprint(
            network_id=network_id, sha256=sha256, device_id=device_id, seen_at=now
        )
        if _insert(session, row):
            return False
        _touch(session, ProbeFingerprint.seen_at, where)
    found = session.get_one(ProbeFingerprint, (network_id, sha256), populate_existing=True)
    recent = found.seen_at >= now - window
    found.seen_at = now
    found.device_id = device_id
    session.flush()
    return recent


def prune_probes(session: Session, *, older_than: datetime) -> int:
    """Forget probe fingerprints last seen before ``older_than``; how many."""
    stmt = delete(ProbeFingerprint).where(ProbeFingerprint.seen_at < older_than)
    return _rowcount(session, stmt.execution_options(synchronize_session=False))


# --- merchant exclusions --------------------------------------------------------------------


def exclude_merchant(session: Session, *, subject_id: str, merchant_id: str) -> bool:
    """The subject does not pay by face at this merchant; False when already excluded."""
    if is_excluded(session, subject_id=subject_id, merchant_id=merchant_id):
        return False
    row = MerchantExclusion(subject_id=subject_id, merchant_id=merchant_id, created_at=utcnow())
    return _insert(session, row)


def include_merchant(session: Session, *, subject_id: str, merchant_id: str) -> bool:
    """Lift an exclusion; False when there was none."""
    stmt = delete(MerchantExclusion).where(
        MerchantExclusion.subject_id == subject_id, MerchantExclusion.merchant_id == merchant_id
    )
    return _rowcount(session, stmt.execution_options(synchronize_session=False)) > 0


def excluded_merchants(session: Session, *, subject_id: str) -> set[str]:
    """Ids of the merchants the subject excluded."""
    stmt = select(MerchantExclusion.merchant_id).where(MerchantExclusion.subject_id == subject_id)
    return set(session.scalars(stmt))


def is_excluded(session: Session, *, subject_id: str, merchant_id: str) -> bool:
    """Whether the subject excluded this merchant."""
    stmt = select(MerchantExclusion.merchant_id).where(
        MerchantExclusion.subject_id == subject_id, MerchantExclusion.merchant_id == merchant_id
    )
    return session.scalars(stmt).first() is not None


# --- preferences and PIN --------------------------------------------------------------------


def _preference_key(subject_id: str, merchant_id: str) -> ColumnElement[bool]:
    return and_(Preference.subject_id == subject_id, Preference.merchant_id == merchant_id)


def set_preferences(
    session: Session, *, subject_id: str, merchant_id: str, sealed_payload: bytes
) -> None:
    """Store (replace) the subject's sealed preferences at this merchant."""
    key = _preference_key(subject_id, merchant_id)
    values = {"sealed_payload": sealed_payload, "updated_at": utcnow()}
    stmt = update(Preference).where(key).values(values)
    stmt = stmt.execution_options(synchronize_session="fetch")
    if _rowcount(session, stmt):
        return
    row = Preference(subject_id=subject_id, merchant_id=merchant_id, **values)
    if not _insert(session, row):  # a concurrent first write won: this one is later
        _rowcount(session, stmt)


def get_preferences(session: Session, *, subject_id: str, merchant_id: str) -> bytes | None:
    """The subject's sealed preferences at this merchant, or None."""
    stmt = select(Preference.sealed_payload).where(_preference_key(subject_id, merchant_id))
    return session.scalars(stmt).first()


def delete_preferences(session: Session, *, subject_id: str, merchant_id: str | None = None) -> int:
    """Delete the subject's preferences at one merchant, or everywhere; how many."""
    stmt = delete(Preference).where(Preference.subject_id == subject_id)
    if merchant_id is not None:
        stmt = stmt.where(Preference.merchant_id == merchant_id)
    return _rowcount(session, stmt.execution_options(synchronize_session="fetch"))


def set_pin_hash(
    session: Session, *, network_id: str, subject_id: str, pin_hash: str | None
) -> bool:
    """Store (or clear, with None) an active subject's salted PIN hash; False if not found."""
    stmt = (
        update(Subject)
        .where(
            Subject.id == subject_id, Subject.network_id == network_id, Subject.status == "active"
        )
        .values(pin_hash=pin_hash)
        .execution_options(synchronize_session="fetch")
    )
    return _rowcount(session, stmt) > 0
