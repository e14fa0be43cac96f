"""Consecutive failures of a subject or a device, and the lockout they trigger.

One mechanism for every lockout (failed checkout step-ups, failed liveness sessions): a
:class:`LockoutRule` says after how many consecutive failures a key locks, for how long, how
the lock grows with each further failure, and when old failures are forgotten.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

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


#: What a counter is about: a subject, a device, or a client address (the web pages).
Kind = Literal["subject", "device", "address"]


@dataclass(frozen=True)
class LockoutRule:
    """When consecutive failures of a subject or a device lock it, and for how long.

    From the ``lock_after``-th consecutive failure on, each failure (re)starts a lockout: the
    first lasts ``first_lock`` and each further one twice the one before, up to
    ``longest_lock`` (NIST SP 800-63B 5.2.2: throttling that slows a guesser ever more). A
    failure more than ``forget_after`` after the one before starts the count again, so a few
    honest failures spread over days never add up to a lock.
    """

    name: str  # "" (checkout) or a prefix of the counter's kind, e.g. "liveness-"
    lock_after: int
    first_lock: timedelta
    longest_lock: timedelta
    forget_after: timedelta

    def counter(self, kind: Kind) -> str:
        """The counter kind of ``kind`` under this rule."""
        return f"{self.name}{kind}"

    def lock_for(self, consecutive: int) -> timedelta | None:
        """The lockout the ``consecutive``-th failure starts (None before ``lock_after``)."""
        if consecutive < self.lock_after:
            return None
        doublings = min(consecutive - self.lock_after, 30)
        return min(self.first_lock * (1 << doublings), self.longest_lock)


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
    session: Session, rule: LockoutRule, *, kind: Kind, key: str, now: datetime
) -> FailureState:
    """Count one more consecutive failure of ``kind`` ``key`` under ``rule``."""
    counter = _locked_counter(session, kind=rule.counter(kind), key=key, now=now)
    if now - counter.updated_at > rule.forget_after:
        counter.consecutive = 0
    counter.consecutive += 1
    counter.updated_at = now
    lock_for = rule.lock_for(counter.consecutive)
    if lock_for is not None:
        counter.locked_until = now + lock_for
    session.flush()
    return FailureState(counter.consecutive, counter.locked_until)


def record_success(session: Session, rule: LockoutRule, *, kind: Kind, key: str) -> None:
    """Reset the consecutive failures (and any lockout) of ``kind`` ``key`` under ``rule``."""
    stmt = delete(FailureCounter).where(_counter_key(rule.counter(kind), key))
    session.execute(stmt.execution_options(synchronize_session=False))


def lock_state(
    session: Session, rule: LockoutRule, *, kind: Kind, key: str, now: datetime
) -> FailureState | None:
    """The failure state of ``kind`` ``key`` under ``rule``, or None without failures.

    ``now`` is compared with the lockout: an expired one is reported as ``locked_until`` None.
    """
    stmt = select(FailureCounter.consecutive, FailureCounter.locked_until).where(
        _counter_key(rule.counter(kind), key)
    )
    row = session.execute(stmt).first()
    if row is None:
        return None
    locked_until = row.locked_until if row.locked_until and row.locked_until > now else None
    return FailureState(row.consecutive, locked_until)


#: Failed step-ups against an account (the subject the digits or PIN point to).
CHECKOUT: Final = LockoutRule(
    name="",
    lock_after=5,
    first_lock=timedelta(minutes=15),
    longest_lock=timedelta(hours=24),
    forget_after=timedelta(days=1),
)
#: Failed liveness sessions (spoof or inconclusive) of a device or a subject. A locked device
#: also cannot check out: a terminal that keeps failing liveness is under attack.
LIVENESS: Final = LockoutRule(
    name="liveness-",
    lock_after=5,
    first_lock=timedelta(minutes=3),
    longest_lock=timedelta(hours=1),
    forget_after=timedelta(minutes=30),
)
#: Failed sign-ins on the web pages per client address (operator key, portal code, face and
#: digits), and failed camera checks per client address.
WEB_SIGN_IN: Final = LockoutRule(
    name="web-sign-in-",
    lock_after=5,
    first_lock=timedelta(minutes=3),
    longest_lock=timedelta(hours=1),
    forget_after=timedelta(minutes=30),
)
WEB_CHECK: Final = dataclasses.replace(WEB_SIGN_IN, name="web-check-")
