"""Subjects (consumers), their consents, templates and retained images.

Every lookup by subject id also takes the caller's network id: a subject of another network is
simply not found (tenant isolation at the query level).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from facekey.errors import SubjectNotActive
from facekey.store.gallery_log import record_change
from facekey.store.statements import rowcount
from facekey.store.tables import (
    Consent,
    RetainedImage,
    Subject,
    Template,
    engine_key,
    new_id,
    utcnow,
)


def create_subject(
    session: Session,
    *,
    network_id: str,
    wrapped_data_key: bytes,
    kek_id: str,
    subject_id: str | None = None,
    external_ref: str | None = None,
    sealed_phone: bytes | None = None,
    sealed_payment_token: bytes | None = None,
    phone_bucket: str | None = None,
) -> Subject:
    """Add an active subject; pass ``subject_id`` when it was needed before (e.g. as AAD)."""
    subject = Subject(
        id=subject_id or new_id(),
        network_id=network_id,
        wrapped_data_key=wrapped_data_key,
        kek_id=kek_id,
        external_ref=external_ref,
        sealed_phone=sealed_phone,
        sealed_payment_token=sealed_payment_token,
        phone_bucket=phone_bucket,
    )
    session.add(subject)
    session.flush()
    return subject


def get_subject(session: Session, *, network_id: str, subject_id: str) -> Subject | None:
    """The subject if it belongs to ``network_id`` (erased ones included), else None."""
    stmt = select(Subject).where(Subject.id == subject_id, Subject.network_id == network_id)
    return session.scalars(stmt).first()


def subjects_in_bucket(session: Session, *, network_id: str, phone_bucket: str) -> list[str]:
    """Ids of the network's active subjects whose phone bucket is ``phone_bucket``."""
    stmt = select(Subject.id).where(
        Subject.network_id == network_id,
        Subject.phone_bucket == phone_bucket,
        Subject.status == "active",
    )
    return list(session.scalars(stmt))


def _require_active(session: Session, *, subject_id: str) -> None:
    """Fail unless the subject is active as committed now (not as cached in the session)."""
    status = session.scalar(select(Subject.status).where(Subject.id == subject_id))
    if status != "active":
        raise SubjectNotActive(f"subject {subject_id} is not active")


def add_template(
    session: Session,
    *,
    subject: Subject,
    engine_id: str,
    engine_version: str,
    sealed_vector: bytes,
    quality: float,
    source: str,
) -> Template:
    """Add a sealed template and its gallery "add" change, in the caller's transaction.

    Raises:
        SubjectNotActive: the subject was erased (checked after the insert, so a concurrent
            erasure either sees this template or makes this call fail).
    """
    template = Template(
        subject_id=subject.id,
        network_id=subject.network_id,
        engine_id=engine_id,
        engine_version=engine_version,
        sealed_vector=sealed_vector,
        quality=quality,
        source=source,
    )
    session.add(template)
    session.flush()
    _require_active(session, subject_id=subject.id)
    record_change(
        session,
        network_id=subject.network_id,
        engine_key=engine_key(engine_id, engine_version),
        kind="add",
        subject_id=subject.id,
        template_id=template.id,
    )
    return template


def templates_of(session: Session, *, subject_id: str) -> list[Template]:
    """The subject's templates, oldest first."""
    stmt = select(Template).where(Template.subject_id == subject_id).order_by(Template.id)
    return list(session.scalars(stmt))


def active_templates(
    session: Session, *, network_id: str, engine_id: str, engine_version: str
) -> list[Template]:
    """Every template of one engine in one network whose subject is active (gallery rebuild)."""
    stmt = (
        select(Template)
        .join(Subject, Subject.id == Template.subject_id)
        .where(
            Template.network_id == network_id,
            Template.engine_id == engine_id,
            Template.engine_version == engine_version,
            Subject.status == "active",
        )
        .order_by(Template.id)
    )
    return list(session.scalars(stmt))


def retain_image(session: Session, *, subject_id: str, sealed_image: bytes) -> RetainedImage:
    """Keep a sealed enrolment image (only when the operator enabled retention)."""
    image = RetainedImage(subject_id=subject_id, sealed_image=sealed_image)
    session.add(image)
    session.flush()
    return image


def retained_images_of(session: Session, *, subject_id: str) -> list[RetainedImage]:
    """The subject's retained images, oldest first."""
    stmt = (
        select(RetainedImage)
        .where(RetainedImage.subject_id == subject_id)
        .order_by(RetainedImage.created_at, RetainedImage.id)
    )
    return list(session.scalars(stmt))


def delete_retained_images(session: Session, *, subject_id: str) -> int:
    """Destroy the subject's retained images; returns how many there were."""
    result = session.execute(delete(RetainedImage).where(RetainedImage.subject_id == subject_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def grant_consent(
    session: Session,
    *,
    subject_id: str,
    purpose: str,
    terms_version: str,
    channel: str,
    granted_at: datetime | None = None,
) -> Consent:
    """Record a grant; an active grant of the same purpose, terms and channel is returned as is."""
    stmt = select(Consent).where(
        Consent.subject_id == subject_id,
        Consent.purpose == purpose,
        Consent.terms_version == terms_version,
        Consent.channel == channel,
        Consent.withdrawn_at.is_(None),
    )
    existing = session.scalars(stmt).first()
    if existing is not None:
        return existing
    consent = Consent(
        subject_id=subject_id,
        purpose=purpose,
        terms_version=terms_version,
        channel=channel,
        granted_at=granted_at or utcnow(),
    )
    session.add(consent)
    session.flush()
    return consent


def withdraw_consent(
    session: Session, *, subject_id: str, purpose: str, withdrawn_at: datetime | None = None
) -> bool:
    """Withdraw every active grant of ``purpose``; False when there was none."""
    stmt = (
        update(Consent)
        .where(
            Consent.subject_id == subject_id,
            Consent.purpose == purpose,
            Consent.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=withdrawn_at or utcnow())
        .execution_options(synchronize_session="fetch")
    )
    result = session.execute(stmt)
    return int(result.rowcount) > 0  # type: ignore[attr-defined]


def consents_of(session: Session, *, subject_id: str) -> list[Consent]:
    """The subject's whole consent history, oldest first."""
    stmt = (
        select(Consent)
        .where(Consent.subject_id == subject_id)
        .order_by(Consent.granted_at, Consent.id)
    )
    return list(session.scalars(stmt))


def active_purposes(session: Session, *, subject_id: str) -> set[str]:
    """The purposes the subject currently consents to."""
    stmt = select(Consent.purpose).where(
        Consent.subject_id == subject_id, Consent.withdrawn_at.is_(None)
    )
    return set(session.scalars(stmt))


def subjects_with_purpose(
    session: Session, *, network_id: str, subject_ids: Collection[str], purpose: str
) -> set[str]:
    """Those of ``subject_ids`` that are in the network, active, and consent to ``purpose``.

    The re-check after every gallery search: one query, whatever the number of candidates.
    """
    if not subject_ids:
        return set()
    stmt = (
        select(Subject.id)
        .join(Consent, Consent.subject_id == Subject.id)
        .where(
            Subject.id.in_(list(subject_ids)),
            Subject.network_id == network_id,
            Subject.status == "active",
            Consent.purpose == purpose,
            Consent.withdrawn_at.is_(None),
        )
        .distinct()
    )
    return set(session.scalars(stmt))


def remove_templates(
    session: Session, *, subject_id: str, network_id: str, engine_id: str, engine_version: str
) -> int:
    """Delete the subject's templates of one engine and log their removal from its gallery."""
    stmt = select(Template).where(
        Template.subject_id == subject_id,
        Template.engine_id == engine_id,
        Template.engine_version == engine_version,
    )
    removed = list(session.scalars(stmt))
    key = engine_key(engine_id, engine_version)
    for template in removed:
        record_change(
            session,
            network_id=network_id,
            engine_key=key,
            kind="remove_template",
            subject_id=subject_id,
            template_id=template.id,
        )
        session.delete(template)
    session.flush()
    return len(removed)


def engine_counts(session: Session, *, network_id: str) -> dict[str, tuple[int, int]]:
    """Per engine key: (active subjects with a template, templates) of the network."""
    stmt = (
        select(
            Template.engine_id,
            Template.engine_version,
            func.count(func.distinct(Template.subject_id)),
            func.count(Template.id),
        )
        .join(Subject, Subject.id == Template.subject_id)
        .where(Template.network_id == network_id, Subject.status == "active")
        .group_by(Template.engine_id, Template.engine_version)
    )
    return {engine_key(e, v): (int(s), int(t)) for e, v, s, t in session.execute(stmt)}


def subjects_without_engine(
    session: Session,
    *,
    network_id: str,
    engine_id: str,
    engine_version: str,
    with_retained_images: bool = False,
    limit: int | None = None,
) -> list[str]:
    """Active subjects of the network with no template of this engine (oldest first)."""
    has = select(Template.id).where(
        Template.subject_id == Subject.id,
        Template.engine_id == engine_id,
        Template.engine_version == engine_version,
    )
    stmt = select(Subject.id).where(
        Subject.network_id == network_id, Subject.status == "active", ~has.exists()
    )
    if with_retained_images:
        kept = select(RetainedImage.id).where(RetainedImage.subject_id == Subject.id)
        stmt = stmt.where(kept.exists())
    stmt = stmt.order_by(Subject.created_at, Subject.id).limit(limit)
    return list(session.scalars(stmt))


def subjects_with_engine(
    session: Session, *, network_id: str, engine_id: str, engine_version: str
) -> list[str]:
    """Subjects of the network (erased ones included) holding a template of this engine."""
    stmt = (
        select(Template.subject_id)
        .where(
            Template.network_id == network_id,
            Template.engine_id == engine_id,
            Template.engine_version == engine_version,
        )
        .distinct()
    )
    return list(session.scalars(stmt))


def count_active(session: Session, *, network_id: str) -> int:
    """How many active subjects the network has."""
    stmt = select(func.count(Subject.id)).where(
        Subject.network_id == network_id, Subject.status == "active"
    )
    return int(session.scalar(stmt) or 0)


def set_pin_hash(
    session: Session, *, network_id: str, subject_id: str, pin_hash: str | None
) -> bool:
    """Store (or clear, with None) an active subject's salted PIN hash; False if not found."""
    stmt = (
        update(Subject)
        .where(
            Subject.id == subject_id, Subject.network_id == network_id, Subject.status == "active"
        )
        .values(pin_hash=pin_hash)
        .execution_options(synchronize_session="fetch")
    )
    return rowcount(session, stmt) > 0
