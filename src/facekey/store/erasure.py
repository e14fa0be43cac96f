"""Erasure (GDPR Art. 17) by crypto-shredding, with a receipt and an audit event."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from facekey.errors import SubjectNotActive
from facekey.store.audit import SYSTEM_ACTOR, append_event, canonical_json
from facekey.store.gallery_log import record_change
from facekey.store.tables import (
    AuditEvent,
    Consent,
    ErasureReceipt,
    MerchantExclusion,
    Preference,
    RetainedImage,
    Subject,
    Template,
    engine_key,
    new_id,
)

ERASE_ACTION = "subject.erase"


#: The subject's columns emptied by an erasure (the wrapped data key first: crypto-shredding).
SHREDDED_FIELDS = (
    "wrapped_data_key",
    "sealed_phone",
    "sealed_payment_token",
    "phone_bucket",
    "pin_hash",
    "external_ref",
)


@dataclass(frozen=True)
class ErasureResult:
    """What :func:`erase_subject` did: ``deleted`` counts the rows removed per table."""

    subject_id: str
    subject_pseudonym: str
    templates_erased: int
    engine_keys: tuple[str, ...]
    receipt: ErasureReceipt
    audit_event: AuditEvent
    deleted: dict[str, int]


def _lock_subject(session: Session, *, subject: Subject) -> Subject:
    """Re-read the subject under a row lock so concurrent template inserts finish first (on
    SQLite the session's immediate transaction already holds the write lock)."""
    stmt = (
        select(Subject)
        .where(Subject.id == subject.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    locked = session.scalars(stmt).one()
    if locked.status != "active":
        raise SubjectNotActive(f"subject {subject.id} is already erased")
    return locked


def _delete_personal_rows(
    session: Session, *, subject_id: str
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Delete templates, retained images, consents, merchant exclusions and preferences.

    Returns the rows deleted per table and the templates' engine keys. Authorizations are
    kept: they hold only pseudonymous fields and point at the subject's stub.
    """
    rows = session.execute(
        select(Template.engine_id, Template.engine_version).where(Template.subject_id == subject_id)
    ).all()
    keys = tuple(sorted({engine_key(row.engine_id, row.engine_version) for row in rows}))
    deleted = {}
    for table in (Template, RetainedImage, Consent, MerchantExclusion, Preference):
        result = session.execute(
            delete(table)
            .where(table.subject_id == subject_id)
            .execution_options(synchronize_session=False)
        )
        deleted[table.__tablename__] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return deleted, keys


def _shred(subject: Subject) -> None:
    """Destroy the data key and every personal column; mark the subject erased."""
    for name in SHREDDED_FIELDS:
        setattr(subject, name, None)
    subject.status = "erased"


def receipt_hash(receipt: ErasureReceipt, *, audit_hash: str) -> str:
    """sha256 over the receipt's fields and the hash of its audit event (hex)."""
    fields = {
        "id": receipt.id,
        "network_id": receipt.network_id,
        "subject_pseudonym": receipt.subject_pseudonym,
        "erased_at": receipt.erased_at.isoformat(),
        "templates_erased": receipt.templates_erased,
        "audit_sequence": receipt.audit_sequence,
        "audit_hash": audit_hash,
    }
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


def _write_receipt(
    session: Session, *, subject: Subject, count: int, event: AuditEvent
) -> ErasureReceipt:
    receipt = ErasureReceipt(
        id=new_id(),
        network_id=subject.network_id,
        subject_pseudonym=subject.pseudonym,
        erased_at=event.occurred_at,
        templates_erased=count,
        audit_sequence=event.sequence,
    )
    receipt.receipt_hash = receipt_hash(receipt, audit_hash=event.hash)
    session.add(receipt)
    session.flush()
    return receipt


def erase_subject(
    session: Session, *, subject: Subject, actor: str = SYSTEM_ACTOR
) -> ErasureResult:
    """Erase ``subject`` in the caller's transaction.

    Deletes its templates, retained images, consents, merchant exclusions and preferences; nulls
    its wrapped data key, PIN hash and every other personal column; marks it erased; logs a
    "remove_subject" gallery change for each engine it had templates for; appends a
    ``subject.erase`` audit event by ``actor``; writes a receipt. Authorizations are kept.

    Raises:
        SubjectNotActive: the subject was already erased.
    """
    locked = _lock_subject(session, subject=subject)
    deleted, keys = _delete_personal_rows(session, subject_id=locked.id)
    count = deleted[Template.__tablename__]
    _shred(locked)
    for key in keys:
        record_change(
            session,
            network_id=locked.network_id,
            engine_key=key,
            kind="remove_subject",
            subject_id=locked.id,
        )
    event = append_event(
        session,
        network_id=locked.network_id,
        actor=actor,
        action=ERASE_ACTION,
        subject_pseudonym=locked.pseudonym,
        outcome="erased",
        details={"templates_erased": count, "deleted": deleted},
    )
    receipt = _write_receipt(session, subject=locked, count=count, event=event)
    return ErasureResult(locked.id, locked.pseudonym, count, keys, receipt, event, deleted)
