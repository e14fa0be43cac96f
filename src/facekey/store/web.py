"""Browser sessions, one-time codes and failed attempts of the web pages.

Tokens and codes are stored as their sha256 only: whoever reads the database cannot sign in
with what it holds.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from facekey.store.statements import rowcount
from facekey.store.tables import WebCode, WebSession


def create_web_session(
    session: Session,
    *,
    token_hash: str,
    kind: str,
    expires_at: datetime,
    now: datetime,
    network_id: str | None = None,
    key_id: str | None = None,
    subject_id: str | None = None,
) -> WebSession:
    """A new browser session."""
    row = WebSession(
        token_hash=token_hash,
        kind=kind,
        network_id=network_id,
        key_id=key_id,
        subject_id=subject_id,
        state="{}",
        created_at=now,
        last_seen_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row


def get_web_session(session: Session, *, token_hash: str) -> WebSession | None:
    return session.get(WebSession, token_hash)


def delete_web_session(session: Session, *, token_hash: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))


def prune_web_sessions(session: Session, *, now: datetime) -> int:
    """Delete expired sessions; how many."""
    return rowcount(session, delete(WebSession).where(WebSession.expires_at <= now))


def state_of(row: WebSession) -> dict[str, Any]:
    """A session's state (ids and receipts)."""
    parsed = json.loads(row.state or "{}")
    return parsed if isinstance(parsed, dict) else {}


def set_state(session: Session, *, token_hash: str, state: dict[str, Any]) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.token_hash == token_hash)
        .values(state=json.dumps(state, sort_keys=True))
    )


def touch_web_session(session: Session, *, token_hash: str, now: datetime) -> None:
    session.execute(
        update(WebSession).where(WebSession.token_hash == token_hash).values(last_seen_at=now)
    )


def create_code(
    session: Session,
    *,
    code_hash: str,
    kind: str,
    network_id: str,
    key_id: str,
    expires_at: datetime,
    now: datetime,
    subject_id: str | None = None,
    reusable: bool = False,
) -> WebCode:
    """A new code (only its hash is stored)."""
    row = WebCode(
        code_hash=code_hash,
        kind=kind,
        network_id=network_id,
        key_id=key_id,
        subject_id=subject_id,
        reusable=reusable,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row


def take_code(session: Session, *, code_hash: str, kind: str, now: datetime) -> WebCode | None:
    """The unexpired code of ``kind``, marked used unless reusable (atomic: a single-use code
    is taken by one request only); None otherwise."""
    row = session.get(WebCode, code_hash)
    if row is None or row.kind != kind or row.expires_at <= now:
        return None
    if row.reusable:
        return row
    taken = rowcount(
        session,
        update(WebCode)
        .where(WebCode.code_hash == code_hash, WebCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False),
    )
    return row if taken else None


def codes_of(session: Session, *, network_id: str, now: datetime) -> list[WebCode]:
    """The network's unexpired, unused codes, newest first."""
    stmt = (
        select(WebCode)
        .where(
            WebCode.network_id == network_id, WebCode.expires_at > now, WebCode.used_at.is_(None)
        )
        .order_by(WebCode.created_at.desc())
    )
    return list(session.scalars(stmt))


def count_sessions(session: Session, *, kind: str) -> int:
    """How many sessions of ``kind`` there are."""
    stmt = select(func.count()).select_from(WebSession).where(WebSession.kind == kind)
    return int(session.scalar(stmt) or 0)
