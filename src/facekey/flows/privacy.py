"""The data subject's rights: export (GDPR Art. 15), withdrawal of consent, erasure (Art. 17)."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy.orm import Session

from facekey.errors import InvalidRequest, NotFound
from facekey.flows.auditing import log_subject_event
from facekey.flows.auth import Principal
from facekey.flows.consent import IMAGE_RETENTION, PURPOSES
from facekey.flows.platform import Platform
from facekey.flows.protection import open_text
from facekey.security.api_keys import Scope
from facekey.store import audit, personalization, subjects
from facekey.store.erasure import SHREDDED_FIELDS, erase_subject
from facekey.store.tables import AuditEvent, Consent, Subject, Template


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class ConsentRecord(_Answer):
    """One purpose the subject consented to, and when it was withdrawn (if it was)."""

    purpose: str
    terms_version: str
    channel: str
    granted_at: str
    withdrawn_at: str | None


class TemplateRecord(_Answer):
    """A stored template's metadata (never its vector)."""

    id: int
    engine_id: str
    engine_version: str
    quality: float
    source: str
    created_at: str


class AuditRecord(_Answer):
    """An audit event about the subject."""

    sequence: int
    occurred_at: str
    action: str
    outcome: str
    details: dict[str, JsonValue]


class SubjectExport(_Answer):
    """Everything held about a subject (GDPR Art. 15); templates as metadata only."""

    subject_id: str
    created_at: str
    external_ref: str | None
    phone: str | None
    payment_token: str | None
    consents: list[ConsentRecord]
    templates: list[TemplateRecord]
    retained_images: int = Field(description="enrolment images kept, sealed")
    audit_events: list[AuditRecord]


class Withdrawal(_Answer):
    """A purpose withdrawn (withdrawn is false when it was not granted), and those left."""

    subject_id: str
    purpose: str
    withdrawn: bool
    active_purposes: list[str]


class Destroyed(_Answer):
    """What an erasure destroyed: the data key (so every sealed field), the fields, the rows."""

    data_key: bool
    fields: list[str]
    rows: dict[str, int] = Field(description="rows deleted per table")


class Receipt(_Answer):
    """The erasure receipt, chained into the audit log."""

    id: str
    subject_pseudonym: str
    erased_at: str
    templates_erased: int
    audit_sequence: int
    hash: str
    destroyed: Destroyed


class Erasure(_Answer):
    """A subject erased (GDPR Art. 17): never matched again once this is answered."""

    erased: bool
    receipt: Receipt


def _active_subject(session: Session, principal: Principal, subject_id: str) -> Subject:
    subject = subjects.get_subject(session, network_id=principal.network_id, subject_id=subject_id)
    if subject is None or subject.status != "active":
        raise NotFound(f"no subject {subject_id}")
    return subject


def export(platform: Platform, principal: Principal, subject_id: str) -> SubjectExport:
    """Everything held about a subject, templates as metadata only (never vectors)."""
    principal.require(Scope.PRIVACY)
    with platform.database.session() as session:
        subject = _active_subject(session, principal, subject_id)
        phone, payment_token = _personal_fields(platform, subject)
        result = SubjectExport(
            subject_id=subject.id,
            created_at=subject.created_at.isoformat(),
            external_ref=subject.external_ref,
            phone=phone,
            payment_token=payment_token,
            consents=[_consent(c) for c in subjects.consents_of(session, subject_id=subject.id)],
            templates=[_template(t) for t in subjects.templates_of(session, subject_id=subject.id)],
            retained_images=len(subjects.retained_images_of(session, subject_id=subject.id)),
            audit_events=[
                _event(e)
                for e in audit.events_for_subject(
                    session, network_id=subject.network_id, subject_pseudonym=subject.pseudonym
                )
            ],
        )
        log_subject_event(session, principal, subject, "subject.export", "exported")
    return result


def withdraw(platform: Platform, principal: Principal, subject_id: str, purpose: str) -> Withdrawal:
    """Withdraw consent for one purpose; the subject is no longer matched for it."""
    principal.require(Scope.PRIVACY)
    if purpose not in PURPOSES:
        raise InvalidRequest(f"unknown purpose {purpose!r}; use one of {', '.join(PURPOSES)}")
    with platform.database.session() as session:
        subject = _active_subject(session, principal, subject_id)
        changed = subjects.withdraw_consent(session, subject_id=subject.id, purpose=purpose)
        if purpose == "personalization":
            personalization.delete_preferences(session, subject_id=subject.id)
        if purpose == IMAGE_RETENTION:
            subjects.delete_retained_images(session, subject_id=subject.id)
        log_subject_event(
            session,
            principal,
            subject,
            f"consent.withdraw.{purpose}",
            "withdrawn" if changed else "not-granted",
        )
        remaining = sorted(subjects.active_purposes(session, subject_id=subject.id))
    return Withdrawal(
        subject_id=subject_id, purpose=purpose, withdrawn=changed, active_purposes=remaining
    )


def erase(platform: Platform, principal: Principal, subject_id: str) -> Erasure:
    """Erase a subject: crypto-shred, receipt, audit. Never matched again once this returns."""
    principal.require(Scope.PRIVACY)
    with platform.database.session() as session:
        subject = _active_subject(session, principal, subject_id)
        result = erase_subject(session, subject=subject, actor=principal.key_id)
        receipt = result.receipt
        body = Erasure(
            erased=True,
            receipt=Receipt(
                id=receipt.id,
                subject_pseudonym=receipt.subject_pseudonym,
                erased_at=receipt.erased_at.isoformat(),
                templates_erased=receipt.templates_erased,
                audit_sequence=receipt.audit_sequence,
                hash=receipt.receipt_hash,
                destroyed=Destroyed(
                    data_key=True, fields=list(SHREDDED_FIELDS), rows=result.deleted
                ),
            ),
        )
    # Deleted bytes must not linger in the files: SQLite overwrites them (secure_delete) and
    # folds its write-ahead log back; PostgreSQL marks the dead rows reusable (docs/privacy.md).
    platform.database.checkpoint()
    platform.database.vacuum("subjects")
    # Refresh this process's galleries now; other processes refresh before their next search.
    for key in result.engine_keys:
        platform.galleries.get(principal.network_id, key).refresh()
    return body


def _personal_fields(platform: Platform, subject: Subject) -> tuple[str | None, str | None]:
    """The subject's phone number and payment token, opened."""
    key = platform.vault.subject_key(subject)
    phone = subject.sealed_phone
    token = subject.sealed_payment_token
    return (
        open_text(key, phone, subject_id=subject.id, field="phone") if phone else None,
        open_text(key, token, subject_id=subject.id, field="payment-token") if token else None,
    )


def _consent(consent: Consent) -> ConsentRecord:
    return ConsentRecord(
        purpose=consent.purpose,
        terms_version=consent.terms_version,
        channel=consent.channel,
        granted_at=consent.granted_at.isoformat(),
        withdrawn_at=consent.withdrawn_at.isoformat() if consent.withdrawn_at else None,
    )


def _template(template: Template) -> TemplateRecord:
    return TemplateRecord(
        id=template.id,
        engine_id=template.engine_id,
        engine_version=template.engine_version,
        quality=round(template.quality, 3),
        source=template.source,
        created_at=template.created_at.isoformat(),
    )


def _event(event: AuditEvent) -> AuditRecord:
    return AuditRecord(
        sequence=event.sequence,
        occurred_at=event.occurred_at.isoformat(),
        action=event.action,
        outcome=event.outcome,
        details=json.loads(event.details),
    )
