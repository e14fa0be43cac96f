"""Request nonces: a terminal's nonce is accepted once (replay protection of signed calls)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from facekey.store.statements import insert_ignore, rowcount
from facekey.store.tables import (
    RequestNonce,
)


def remember_nonce(session: Session, *, device_id: str, nonce: str, seen_at: datetime) -> bool:
    """Record a signed request's nonce; False when the device already used it (a replay)."""
    row = {"device_id": device_id, "nonce": nonce, "seen_at": seen_at}
    return insert_ignore(session, RequestNonce, row)


def prune_nonces(session: Session, *, older_than: datetime) -> int:
    """Forget nonces seen before ``older_than`` (outside the replay window); how many."""
    stmt = delete(RequestNonce).where(RequestNonce.seen_at < older_than)
    return rowcount(session, stmt.execution_options(synchronize_session=False))
