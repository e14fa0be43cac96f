"""Fingerprints of recent probe images, to decline exact replays."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete
from sqlalchemy.orm import Session

from facekey.store.statements import insert_new, rowcount, touch
from facekey.store.tables import (
    ProbeFingerprint,
)


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
    if not touch(session, ProbeFingerprint.seen_at, where):
        row = ProbeFingerprint(
            network_id=network_id, sha256=sha256, device_id=device_id, seen_at=now
        )
        if insert_new(session, row):
            return False
        touch(session, ProbeFingerprint.seen_at, where)
    found = session.get_one(ProbeFingerprint, (network_id, sha256), populate_existing=True)
    recent = found.seen_at >= now - window
    found.seen_at = now
    found.device_id = device_id
    session.flush()
    return recent


def prune_probes(session: Session, *, older_than: datetime) -> int:
    """Forget probe fingerprints last seen before ``older_than``; how many."""
    stmt = delete(ProbeFingerprint).where(ProbeFingerprint.seen_at < older_than)
    return rowcount(session, stmt.execution_options(synchronize_session=False))
