"""The tamper-evident audit log: append-only events, hash-chained per network.

Each event stores ``prev_hash`` (the hash of the network's previous event, or 64 zeros for the
first) and ``hash = sha256(prev_hash || canonical JSON of the event's fields)``. Editing an event
breaks its hash; deleting or inserting one breaks the next event's ``prev_hash`` link.
:func:`verify_chain` recomputes everything. Appends are serialised per network
(:func:`facekey.store.locking.lock_network`) so concurrent writers never fork the chain.

What the chain alone cannot show: removal of the newest events (truncation) or a rewrite of the
whole chain by someone with write access. Export the head hash (:func:`chain_head`) to an
external witness when that matters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facekey.store.locking import lock_network
from facekey.store.tables import AuditEvent, utcnow

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class ChainReport:
    """The result of :func:`verify_chain`."""

    ok: bool
    events: int
    first_bad_sequence: int | None = None
    reason: str | None = None


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, compact separators, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(
    *,
    prev_hash: str,
    network_id: str,
    occurred_at: datetime,
    actor: str,
    action: str,
    subject_pseudonym: str | None,
    outcome: str,
    details: str,
) -> str:
    """``sha256(prev_hash || canonical JSON of the fields)`` as hex; ``details`` is canonical."""
    fields = {
        "network_id": network_id,
        "occurred_at": occurred_at.isoformat(),
        "actor": actor,
        "action": action,
        "subject_pseudonym": subject_pseudonym,
        "outcome": outcome,
        "details": json.loads(details),
    }
    payload = prev_hash.encode("ascii") + canonical_json(fields).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def _stored_hash(event: AuditEvent, *, prev_hash: str) -> str:
    return event_hash(
        prev_hash=prev_hash,
        network_id=event.network_id,
        occurred_at=event.occurred_at,
        actor=event.actor,
        action=event.action,
        subject_pseudonym=event.subject_pseudonym,
        outcome=event.outcome,
        details=event.details,
    )


def chain_head(session: Session, *, network_id: str) -> AuditEvent | None:
    """The newest event of ``network_id``'s chain, or None when it is empty."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.network_id == network_id)
        .order_by(AuditEvent.sequence.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def append_event(
    session: Session,
    *,
    network_id: str,
    actor: str,
    action: str,
    subject_pseudonym: str | None,
    outcome: str,
    details: dict[str, Any],
) -> AuditEvent:
    """Append one event to ``network_id``'s chain inside the caller's transaction.

    ``details`` must be JSON-serialisable and hold nothing personal (use pseudonyms).
    The network stays locked for ordered writes until the transaction ends.
    """
    lock_network(session, network_id=network_id)
    head = chain_head(session, network_id=network_id)
    prev_hash = head.hash if head is not None else GENESIS_HASH
    event = AuditEvent(
        network_id=network_id,
        occurred_at=utcnow(),
        actor=actor,
        action=action,
        subject_pseudonym=subject_pseudonym,
        outcome=outcome,
        details=canonical_json(details),
        prev_hash=prev_hash,
    )
    event.hash = _stored_hash(event, prev_hash=prev_hash)
    session.add(event)
    session.flush()
    return event


def events_for_subject(
    session: Session, *, network_id: str, subject_pseudonym: str
) -> list[AuditEvent]:
    """A subject's events in order (for the GDPR export)."""
    stmt = (
        select(AuditEvent)
        .where(
            AuditEvent.network_id == network_id,
            AuditEvent.subject_pseudonym == subject_pseudonym,
        )
        .order_by(AuditEvent.sequence)
    )
    return list(session.scalars(stmt))


def _hash_matches(event: AuditEvent) -> bool:
    try:
        return _stored_hash(event, prev_hash=event.prev_hash) == event.hash
    except ValueError:  # details that are not JSON any more
        return False


def _check(events: Iterable[AuditEvent]) -> ChainReport:
    heads: dict[str, str] = {}
    count = 0
    for event in events:
        count += 1
        expected_prev = heads.get(event.network_id, GENESIS_HASH)
        if event.prev_hash != expected_prev:
            reason = "prev_hash does not match the previous event: an event was deleted or inserted"
            return ChainReport(False, count, event.sequence, reason)
        if not _hash_matches(event):
            reason = "hash does not match the event's content: the event was edited"
            return ChainReport(False, count, event.sequence, reason)
        heads[event.network_id] = event.hash
    return ChainReport(True, count)


def verify_chain(session: Session, *, network_id: str | None = None) -> ChainReport:
    """Recompute every hash of one network's chain (or of every network's chain).

    ``first_bad_sequence`` is the first event whose link or hash is wrong; ``events`` counts the
    events examined up to and including it.
    """
    stmt = select(AuditEvent).order_by(AuditEvent.sequence)
    if network_id is not None:
        stmt = stmt.where(AuditEvent.network_id == network_id)
    result = session.scalars(stmt.execution_options(yield_per=1000))
    try:
        return _check(result)
    finally:
        result.close()
