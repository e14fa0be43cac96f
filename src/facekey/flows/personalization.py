"""Per-merchant preferences (personalization) and merchants a consumer excludes (SSO).

Preferences are sealed with the subject's data key and returned to a merchant only while the
subject consents to personalization; withdrawing that consent deletes them all. A consumer
enrolled once pays at every merchant of the network their payment consent covers, except the
merchants they exclude.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, JsonValue
from sqlalchemy.orm import Session

from facekey.errors import InvalidRequest, NotFound
from facekey.flows.auditing import log_subject_event
from facekey.flows.auth import Principal
from facekey.flows.platform import Platform
from facekey.flows.protection import open_text, seal_text
from facekey.security.api_keys import Scope
from facekey.store import personalization, subjects, tenants
from facekey.store.tables import Subject

MAX_PREFERENCES_BYTES = 4096


class PreferencesStored(BaseModel):
    """A merchant's preferences for a subject were stored (sealed)."""

    model_config = ConfigDict(frozen=True)

    subject_id: str
    merchant_id: str
    stored: bool


class Exclusions(BaseModel):
    """The merchants a subject excludes from paying by face, after the change."""

    model_config = ConfigDict(frozen=True)

    subject_id: str
    excluded_merchants: list[str]


def _subject(session: Session, principal: Principal, subject_id: str) -> Subject:
    subject = subjects.get_subject(session, network_id=principal.network_id, subject_id=subject_id)
    if subject is None or subject.status != "active":
        raise NotFound(f"no subject {subject_id}")
    return subject


def _merchant(session: Session, principal: Principal, merchant_id: str) -> None:
    if (
        tenants.get_merchant(session, network_id=principal.network_id, merchant_id=merchant_id)
        is None
    ):
        raise NotFound(f"no merchant {merchant_id}")


def set_preferences(
    platform: Platform,
    principal: Principal,
    subject_id: str,
    merchant_id: str,
    payload: dict[str, JsonValue],
) -> PreferencesStored:
    """Store a merchant's preferences for a subject (needs their personalization consent)."""
    principal.require(Scope.ENROL, Scope.TERMINAL)
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > MAX_PREFERENCES_BYTES:
        raise InvalidRequest(f"preferences are limited to {MAX_PREFERENCES_BYTES} bytes of JSON")
    with platform.database.session() as session:
        subject = _subject(session, principal, subject_id)
        _merchant(session, principal, merchant_id)
        if "personalization" not in subjects.active_purposes(session, subject_id=subject.id):
            raise InvalidRequest("the subject does not consent to personalization")
        key = platform.vault.subject_key(subject)
        sealed = seal_text(key, text, subject_id=subject.id, field=f"preferences:{merchant_id}")
        personalization.set_preferences(
            session, subject_id=subject.id, merchant_id=merchant_id, sealed_payload=sealed
        )
        log_subject_event(
            session, principal, subject, "preferences.set", "done", {"merchant_id": merchant_id}
        )
    return PreferencesStored(subject_id=subject_id, merchant_id=merchant_id, stored=True)


def preferences_for(
    platform: Platform, session: Session, subject: Subject, merchant_id: str
) -> dict[str, JsonValue] | None:
    """The merchant's preferences for a subject, only under personalization consent."""
    if "personalization" not in subjects.active_purposes(session, subject_id=subject.id):
        return None
    sealed = personalization.get_preferences(
        session, subject_id=subject.id, merchant_id=merchant_id
    )
    if sealed is None:
        return None
    key = platform.vault.subject_key(subject)
    field = f"preferences:{merchant_id}"
    stored: dict[str, JsonValue] = json.loads(
        open_text(key, sealed, subject_id=subject.id, field=field)
    )
    return stored


def set_exclusion(
    platform: Platform, principal: Principal, subject_id: str, merchant_id: str, *, excluded: bool
) -> Exclusions:
    """A consumer excludes (or re-includes) a merchant from paying by face."""
    principal.require(Scope.PRIVACY)
    with platform.database.session() as session:
        subject = _subject(session, principal, subject_id)
        _merchant(session, principal, merchant_id)
        if excluded:
            personalization.exclude_merchant(
                session, subject_id=subject.id, merchant_id=merchant_id
            )
        else:
            personalization.include_merchant(
                session, subject_id=subject.id, merchant_id=merchant_id
            )
        log_subject_event(
            session,
            principal,
            subject,
            "merchant.exclude" if excluded else "merchant.include",
            "done",
            {"merchant_id": merchant_id},
        )
        current = sorted(personalization.excluded_merchants(session, subject_id=subject.id))
    return Exclusions(subject_id=subject_id, excluded_merchants=current)
