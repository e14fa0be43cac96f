"""Storage of liveness sessions: create, read (tenant-checked), finish, use once, lockout counts.

State changes are single conditional ``UPDATE`` statements, so they are atomic on both backends
whatever the concurrency: a session is finished only while ``open`` (two concurrent frame
submissions cannot both decide it) and used only while ``live`` and unused (two concurrent
enrolments or checkouts cannot both bind it). Each returns whether it won.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from facekey.store.audit import canonical_json
from facekey.store.tables import LivenessSession, new_id, utcnow

#: The results that count as a failed session (towards the lockout).
FAILED_STATUSES = ("spoof", "inconclusive")
#: Statuses in which a session still holds something usable until it expires.
ACTIVE_STATUSES = ("open", "live")


def create_session(
    session: Session,
    *,
    network_id: str,
    mode: str,
    nonce: str,
    challenges: Sequence[str],
    expires_at: datetime,
    device_id: str | None = None,
    subject_id: str | None = None,
    session_id: str | None = None,
    created_at: datetime | None = None,
) -> LivenessSession:
    """Insert an open session."""
    row = LivenessSession(
        id=session_id or new_id(),
        network_id=network_id,
        mode=mode,
        nonce=nonce,
        challenges=json.dumps(list(challenges)),
        created_at=created_at or utcnow(),
        expires_at=expires_at,
        status="open",
        device_id=device_id,
        subject_id=subject_id,
    )
    session.add(row)
    session.flush()
    return row


def get_session(session: Session, *, network_id: str, session_id: str) -> LivenessSession | None:
    """The session, only when it belongs to ``network_id``."""
    stmt = select(LivenessSession).where(
        LivenessSession.id == session_id, LivenessSession.network_id == network_id
    )
    return session.scalars(stmt).one_or_none()


def challenges_of(row: LivenessSession) -> list[str]:
    """The session's challenge names, in order."""
    names = json.loads(row.challenges)
    return [str(name) for name in names]


def evidence_of(row: LivenessSession) -> dict[str, float]:
    """The session's stored evidence (numbers only); empty before a result."""
    return dict(json.loads(row.result_evidence)) if row.result_evidence else {}


def _change(session: Session, *where: ColumnElement[bool], **values: object) -> bool:
    stmt = (
        update(LivenessSession)
        .where(*where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount) == 1  # type: ignore[attr-defined]


def finish_session(
    session: Session,
    *,
    session_id: str,
    status: str,
    evidence: Mapping[str, float],
    finished_at: datetime,
    sealed_best_template: bytes | None = None,
) -> bool:
    """Record an open session's result; False when it was not open any more (lost a race).

    ``evidence`` must hold numbers only; a template is kept only for a ``live`` result.
    """
    if any(not isinstance(v, int | float) for v in evidence.values()):
        raise ValueError("liveness evidence holds numbers only")
    return _change(
        session,
        LivenessSession.id == session_id,
        LivenessSession.status == "open",
        status=status,
        result_evidence=canonical_json(dict(evidence)),
        sealed_best_template=sealed_best_template if status == "live" else None,
        finished_at=finished_at,
    )


def start_step_up(
    session: Session,
    *,
    session_id: str,
    challenges: Sequence[str],
    evidence: Mapping[str, float],
    sealed_best_template: bytes,
) -> bool:
    """Keep an open passive session open for its step-up challenge: record the challenge, the
    first burst's evidence and its sealed best template; False when it was not open and
    without a challenge any more (lost a race)."""
    if any(not isinstance(v, int | float) for v in evidence.values()):
        raise ValueError("liveness evidence holds numbers only")
    return _change(
        session,
        LivenessSession.id == session_id,
        LivenessSession.status == "open",
        LivenessSession.challenges == json.dumps([]),
        challenges=json.dumps(list(challenges)),
        result_evidence=canonical_json(dict(evidence)),
        sealed_best_template=sealed_best_template,
    )


def mark_used(session: Session, *, session_id: str, now: datetime) -> bool:
    """Bind a live, unused, unexpired session once; False when another call already did.

    One ``UPDATE ... WHERE status = 'live' AND used_at IS NULL``: atomic on both backends. A
    used session keeps its result and is known by its ``used_at``; the sealed template is
    cleared with it: a used session holds no biometric data.
    """
    return _change(
        session,
        LivenessSession.id == session_id,
        LivenessSession.status == "live",
        LivenessSession.used_at.is_(None),
        LivenessSession.expires_at > now,
        used_at=now,
        sealed_best_template=None,
    )


def expire_sessions(session: Session, *, now: datetime) -> int:
    """Mark open (or stepping up) or live, unused sessions past their expiry ``expired`` and
    drop their templates."""
    stmt = (
        update(LivenessSession)
        .where(
            LivenessSession.status.in_(ACTIVE_STATUSES),
            LivenessSession.used_at.is_(None),
            LivenessSession.expires_at <= now,
        )
        .values(status="expired", sealed_best_template=None)
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
