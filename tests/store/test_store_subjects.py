"""Subjects, templates, consents, erasure, gallery change log, tenants and API keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from facekey.errors import SubjectNotActive
from facekey.store import erasure, gallery_log, subjects, tenants
from facekey.store.audit import verify_chain
from facekey.store.database import Database
from facekey.store.tables import Consent, ErasureReceipt, RetainedImage, Subject, Template

ENGINE = ("dlib-resnet-v1", "1")
ENGINE_KEY = "dlib-resnet-v1:1"


def _subject(database: Database, network_id: str, *, templates: int = 2, **kwargs: object) -> str:
    """An enrolled subject with payment consent and ``templates`` templates."""
    with database.session() as session:
        subject = subjects.create_subject(
            session,
            network_id=network_id,
            wrapped_data_key=b"wrapped-dek",
            kek_id="kek-test",
            sealed_phone=b"sealed-phone",
            sealed_payment_token=b"sealed-token",
            phone_bucket="bucket-1234",
            **kwargs,  # type: ignore[arg-type]
        )
        subjects.grant_consent(
            session, subject_id=subject.id, purpose="payment", terms_version="v1", channel="app"
        )
        for index in range(templates):
            subjects.add_template(
                session,
                subject=subject,
                engine_id=ENGINE[0],
                engine_version=ENGINE[1],
                sealed_vector=f"sealed-{index}".encode(),
                quality=0.9,
                source="enrolment",
            )
        return subject.id


def test_subject_and_templates(database: Database, network_id: str) -> None:
    subject_id = _subject(database, network_id, templates=3, external_ref="crm-1")
    with database.session() as session:
        subject = subjects.get_subject(session, network_id=network_id, subject_id=subject_id)
        assert subject is not None
        assert subject.status == "active"
        assert len(subject.pseudonym) == 16
        assert subject.created_at.tzinfo is UTC
        templates = subjects.templates_of(session, subject_id=subject_id)
        assert [t.sealed_vector for t in templates] == [b"sealed-0", b"sealed-1", b"sealed-2"]
        assert all(t.engine_key == ENGINE_KEY for t in templates)
        active = subjects.active_templates(
            session, network_id=network_id, engine_id=ENGINE[0], engine_version=ENGINE[1]
        )
        assert {t.id for t in active} == {t.id for t in templates}
        assert subjects.subjects_in_bucket(
            session, network_id=network_id, phone_bucket="bucket-1234"
        ) == [subject_id]


def test_external_ref_unique_per_network(database: Database, network_id: str) -> None:
    _subject(database, network_id, templates=0, external_ref="dup")
    _subject(database, network_id, templates=0)  # NULL refs do not collide
    _subject(database, network_id, templates=0)
    with pytest.raises(IntegrityError):
        _subject(database, network_id, templates=0, external_ref="dup")


def test_tenant_isolation(database: Database, network_id: str) -> None:
    with database.session() as session:
        other = tenants.create_network(
            session,
            name=f"other-{network_id}",
            wrapped_transform_secret=b"s",
            kek_id="k",
            engine="fake",
        ).id
    theirs = _subject(database, other)
    with database.session() as session:
        assert subjects.get_subject(session, network_id=network_id, subject_id=theirs) is None
        assert subjects.get_subject(session, network_id=other, subject_id=theirs) is not None
        assert (
            subjects.subjects_with_purpose(
                session, network_id=network_id, subject_ids=[theirs], purpose="payment"
            )
            == set()
        )
        mine = subjects.active_templates(
            session, network_id=network_id, engine_id=ENGINE[0], engine_version=ENGINE[1]
        )
        assert all(t.subject_id != theirs for t in mine)


def test_consent_history(database: Database, network_id: str) -> None:
    subject_id = _subject(database, network_id, templates=0)
    with database.session() as session:
        again = subjects.grant_consent(
            session, subject_id=subject_id, purpose="payment", terms_version="v1", channel="app"
        )
        subjects.grant_consent(
            session,
            subject_id=subject_id,
            purpose="personalization",
            terms_version="v1",
            channel="kiosk",
        )
        assert len(subjects.consents_of(session, subject_id=subject_id)) == 2  # idempotent grant
        assert again.withdrawn_at is None
        assert subjects.active_purposes(session, subject_id=subject_id) == {
            "payment",
            "personalization",
        }
    with database.session() as session:
        assert subjects.withdraw_consent(session, subject_id=subject_id, purpose="payment")
        assert not subjects.withdraw_consent(session, subject_id=subject_id, purpose="payment")
        assert subjects.active_purposes(session, subject_id=subject_id) == {"personalization"}
    with database.session() as session:
        subjects.grant_consent(
            session, subject_id=subject_id, purpose="payment", terms_version="v2", channel="web"
        )
        history = [
            (c.purpose, c.terms_version, c.withdrawn_at is None)
            for c in subjects.consents_of(session, subject_id=subject_id)
            if c.purpose == "payment"
        ]
    assert history == [("payment", "v1", False), ("payment", "v2", True)]


def test_subjects_with_purpose_rechecks_status_and_consent(
    database: Database, network_id: str
) -> None:
    kept, withdrawn, erased = (_subject(database, network_id) for _ in range(3))
    with database.session() as session:
        subjects.withdraw_consent(session, subject_id=withdrawn, purpose="payment")
        subject = subjects.get_subject(session, network_id=network_id, subject_id=erased)
        assert subject is not None
        erasure.erase_subject(session, subject=subject)
    with database.session() as session:
        found = subjects.subjects_with_purpose(
            session,
            network_id=network_id,
            subject_ids=[kept, withdrawn, erased, "no-such-subject"],
            purpose="payment",
        )
        assert found == {kept}
        assert (
            subjects.subjects_with_purpose(
                session, network_id=network_id, subject_ids=[], purpose="payment"
            )
            == set()
        )


def test_erasure(database: Database, network_id: str) -> None:
    subject_id = _subject(database, network_id, templates=2, external_ref="crm-erase")
    with database.session() as session:
        subjects.retain_image(session, subject_id=subject_id, sealed_image=b"sealed-image")
        before = gallery_log.current_sequence(session, network_id=network_id, engine_key=ENGINE_KEY)
    with database.session() as session:
        subject = subjects.get_subject(session, network_id=network_id, subject_id=subject_id)
        assert subject is not None
        result = erasure.erase_subject(session, subject=subject, actor="key-privacy")
    assert result.templates_erased == 2
    assert result.engine_keys == (ENGINE_KEY,)
    assert result.receipt.audit_sequence == result.audit_event.sequence
    assert len(result.receipt.receipt_hash) == 64
    with database.session() as session:
        erased = session.get(Subject, subject_id, populate_existing=True)
        assert erased is not None
        assert erased.status == "erased"
        personal = (
            erased.wrapped_data_key,
            erased.sealed_phone,
            erased.sealed_payment_token,
            erased.phone_bucket,
            erased.external_ref,
        )
        assert personal == (None,) * 5
        for table in (Template, RetainedImage, Consent):
            count = session.scalar(
                select(func.count()).select_from(table).where(table.subject_id == subject_id)
            )
            assert count == 0, table.__tablename__
        receipt = session.scalars(
            select(ErasureReceipt).where(ErasureReceipt.subject_pseudonym == erased.pseudonym)
        ).one()
        assert receipt.templates_erased == 2
        assert receipt.erased_at.tzinfo is UTC
        changes = gallery_log.changes_since(
            session, network_id=network_id, engine_key=ENGINE_KEY, sequence=before
        )
        assert [(c.kind, c.subject_id) for c in changes] == [("remove_subject", subject_id)]
        assert verify_chain(session, network_id=network_id).ok
        with pytest.raises(SubjectNotActive):
            erasure.erase_subject(session, subject=erased)
    with pytest.raises(SubjectNotActive), database.session() as session:
        subjects.add_template(
            session,
            subject=erased,
            engine_id=ENGINE[0],
            engine_version=ENGINE[1],
            sealed_vector=b"late",
            quality=0.5,
            source="added",
        )
    _subject(database, network_id, templates=0, external_ref="crm-erase")  # the ref is free


def test_change_sequence_is_monotone(database: Database, network_id: str) -> None:
    with database.session() as session:
        assert (
            gallery_log.current_sequence(session, network_id=network_id, engine_key=ENGINE_KEY) == 0
        )
    first = _subject(database, network_id, templates=2)
    second = _subject(database, network_id, templates=1)
    with database.session() as session:
        changes = gallery_log.changes_since(
            session, network_id=network_id, engine_key=ENGINE_KEY, sequence=0
        )
        sequences = [c.sequence for c in changes]
        assert sequences == sorted(sequences)
        assert len(set(sequences)) == 3
        assert [c.subject_id for c in changes] == [first, first, second]
        assert all(c.kind == "add" and c.template_id is not None for c in changes)
        head = gallery_log.current_sequence(session, network_id=network_id, engine_key=ENGINE_KEY)
        assert head == sequences[-1]
        assert (
            gallery_log.changes_since(
                session, network_id=network_id, engine_key=ENGINE_KEY, sequence=head
            )
            == []
        )
        assert (
            gallery_log.current_sequence(session, network_id=network_id, engine_key="other:1") == 0
        )
        template_ids = [c.template_id or 0 for c in changes]
        assert template_ids == sorted(template_ids)


def test_merchants_stores_devices(database: Database, network_id: str) -> None:
    with database.session() as session:
        merchant = tenants.create_merchant(session, network_id=network_id, name="Shop")
        store = tenants.create_store(session, merchant_id=merchant.id, name="Main street")
        device = tenants.create_device(
            session, store_id=store.id, network_id=network_id, wrapped_secret=b"w", kek_id="k"
        )
    with database.session() as session:
        assert tenants.get_merchant(session, network_id=network_id, merchant_id=merchant.id)
        assert (
            tenants.get_merchant(session, network_id="elsewhere", merchant_id=merchant.id) is None
        )
        assert tenants.get_store(session, network_id=network_id, store_id=store.id)
        assert tenants.get_store(session, network_id="elsewhere", store_id=store.id) is None
        loaded = tenants.get_device(session, device_id=device.id)
        assert loaded is not None
        assert loaded.enabled


def test_api_keys(database: Database, network_id: str) -> None:
    expires = datetime.now(UTC) + timedelta(days=30)
    with database.session() as session:
        for scope in ("admin", "enrol", "terminal", "privacy"):
            tenants.add_api_key(
                session,
                key_id=f"{network_id[:8]}-{scope}",
                network_id=network_id,
                scope=scope,
                secret_hash="hash",
                expires_at=expires if scope == "terminal" else None,
                label=scope,
            )
    with database.session() as session:
        key = tenants.get_api_key(session, key_id=f"{network_id[:8]}-terminal")
        assert key is not None
        assert key.expires_at == expires
        assert key.revoked_at is None
        assert tenants.revoke_api_keys(session, network_id=network_id, scope="terminal") == 1
        assert key.revoked_at is not None
        assert tenants.revoke_api_keys(session, network_id=network_id) == 3
        assert tenants.revoke_api_keys(session, network_id=network_id) == 0


def test_gallery_snapshot(database: Database, network_id: str) -> None:
    with database.session() as session:
        assert gallery_log.gallery_snapshot(
            session, network_id=network_id, engine_id=ENGINE[0], engine_version=ENGINE[1]
        ) == (0, [])
    kept = _subject(database, network_id, templates=2)
    erased = _subject(database, network_id, templates=1)
    with database.session() as session:
        subject = subjects.get_subject(session, network_id=network_id, subject_id=erased)
        assert subject is not None
        erasure.erase_subject(session, subject=subject)
    with database.session() as session:
        sequence, rows = gallery_log.gallery_snapshot(
            session, network_id=network_id, engine_id=ENGINE[0], engine_version=ENGINE[1]
        )
        assert sequence == gallery_log.current_sequence(
            session, network_id=network_id, engine_key=ENGINE_KEY
        )
        assert [subject.id for _, subject in rows] == [kept, kept]
        assert [template.subject_id for template, _ in rows] == [kept, kept]
