"""The audit events the flows write about a subject (by pseudonym, never by id or name)."""

from __future__ import annotations

from pydantic import JsonValue
from sqlalchemy.orm import Session

from facekey.flows.auth import Principal
from facekey.store import audit
from facekey.store.tables import Subject


def log_subject_event(
    session: Session,
    principal: Principal,
    subject: Subject,
    action: str,
    outcome: str,
    details: dict[str, JsonValue] | None = None,
) -> None:
    """Append one event about ``subject`` by ``principal`` to the network's audit chain."""
    audit.append_event(
        session,
        network_id=subject.network_id,
        actor=principal.key_id,
        action=action,
        subject_pseudonym=subject.pseudonym,
        outcome=outcome,
        details=details or {},
    )
