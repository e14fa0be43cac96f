"""Consecutive failures of a subject or a device, and the lockout they trigger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.orm import Session

from facekey.store.statements import insert_new, touch
from facekey.store.tables import (
    FailureCounter,
)


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
    if not touch(session, FailureCounter.consecutive, _counter_key(kind, key)):
        row = FailureCounter(kind=kind, key=key, consecutive=0, updated_at=now)
        if insert_new(session, row):
            return row
        touch(session, FailureCounter.consecutive, _counter_key(kind, key))
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
