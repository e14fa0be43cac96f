"""Opt-in enrolment: consent, 1–5 images or a live liveness session, quality gate, duplicate
check, sealed storage.

With ``liveness_session_id`` the template is the best frame of the caller's live challenge
session (:mod:`facekey.flows.liveness`), bound once in the enrolment's own transaction: a failed
enrolment leaves the session usable, a successful one uses it up.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.orm import Session

from facekey.errors import (
    DuplicateEnrolment,
    InvalidRequest,
    LivenessRequired,
    LowQuality,
    NotFound,
)
from facekey.flows import liveness
from facekey.flows.auditing import log_subject_event
from facekey.flows.auth import Principal
from facekey.flows.decisions import meets
from facekey.flows.faces import enrolment_faces, protected
from facekey.flows.platform import Platform
from facekey.flows.protection import seal_image, seal_text, seal_vector
from facekey.flows.search import active_subjects, network_of, subject_vectors
from facekey.pipeline import Face
from facekey.security.api_keys import Scope
from facekey.security.card_numbers import looks_like_card_number
from facekey.security.pins import check_pin_format, hash_pin
from facekey.security.transform import TemplateTransform
from facekey.store import subjects
from facekey.store.tables import Network, Subject, new_id
from facekey.vision.types import FloatArray

Purpose = Literal["payment", "personalization"]
PURPOSES: Final[tuple[str, ...]] = ("payment", "personalization")
#: Two enrolment images must match at least this well to be one person.
SAME_PERSON_FMR: Final = 1e-3
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,24}$")


class ConsentRequest(BaseModel):
    """The consent a subject gives at enrolment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    purposes: list[Purpose] = Field(min_length=1, max_length=len(PURPOSES))
    terms_version: str = Field(min_length=1, max_length=64)
    channel: str = Field(min_length=1, max_length=64)

    @field_validator("purposes")
    @classmethod
    def _distinct(cls, purposes: list[Purpose]) -> list[Purpose]:
        if len(set(purposes)) != len(purposes):
            raise ValueError("purposes are listed more than once")
        return purposes

    @classmethod
    def parse(cls, text: str) -> ConsentRequest:
        """Parse the ``consent`` form field; :class:`InvalidRequest` with the reason."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'consent'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidRequest(f"invalid consent: {reasons}") from exc


@dataclass(frozen=True)
class EnrolRequest:
    """What an enrolment carries (images as bytes, never paths)."""

    consent: ConsentRequest
    images: list[bytes]
    phone: str | None = None
    payment_token: str | None = None
    external_ref: str | None = None
    pin: str | None = None
    liveness_session_id: str | None = None


@dataclass(frozen=True)
class EnrolResult:
    subject_id: str
    templates: int
    quality: list[float]


def enrol(platform: Platform, principal: Principal, request: EnrolRequest) -> EnrolResult:
    """Enrol a new subject in one transaction; nothing is written if any check fails."""
    principal.require(Scope.ENROL)
    _check_fields(platform, request)
    network = network_of(platform, principal.network_id)
    vectors, qualities = _enrolment_vectors(platform, network, request)
    _check_not_enrolled(platform, network, vectors)
    session_id = request.liveness_session_id
    source = "enrolment" if session_id is None else "liveness"
    with platform.database.session() as session:
        if session_id is not None:
            liveness.consume(session, session_id)
        subject = _create_subject(platform, session, network, request)
        for vector, quality in zip(vectors, qualities, strict=True):
            _store_template(platform, session, subject, vector, quality, source)
        if platform.settings.retain_images and request.images:
            _retain(platform, session, subject, request.images)
        log_subject_event(
            session, principal, subject, "subject.enrol", "enrolled", {"templates": len(vectors)}
        )
        subject_id = subject.id
    return EnrolResult(subject_id, len(vectors), [round(q, 3) for q in qualities])


def _enrolment_vectors(
    platform: Platform, network: Network, request: EnrolRequest
) -> tuple[list[FloatArray], list[float]]:
    """Protected template vectors and qualities, from the images or the liveness session."""
    if request.liveness_session_id is not None:
        bound = liveness.live_face(
            platform, network, request.liveness_session_id, device_id=None, mode="challenge"
        )
        if not bound.quality_ok:
            raise LowQuality("the liveness session's best frame is below the quality gate")
        return [bound.vector], [bound.quality]
    faces = enrolment_faces(platform, request.images)
    _check_same_person(platform, faces)
    transform = platform.vault.transform(network, platform.reader.info)
    return [protected(transform, f) for f in faces], [f.quality.score for f in faces]


def add_images(
    platform: Platform, principal: Principal, subject_id: str, images: list[bytes]
) -> EnrolResult:
    """More templates for an enrolled subject, checked to be the same person."""
    principal.require(Scope.ENROL)
    _check_count(platform, images)
    faces = enrolment_faces(platform, images)
    _check_same_person(platform, faces)
    network = network_of(platform, principal.network_id)
    transform = platform.vault.transform(network, platform.reader.info)
    with platform.database.session() as session:
        subject = subjects.get_subject(session, network_id=network.id, subject_id=subject_id)
        if subject is None or subject.status != "active":
            raise NotFound(f"no subject {subject_id}")
        _check_is_subject(platform, session, subject, transform, faces)
        for face in faces:
            vector = protected(transform, face)
            _store_template(platform, session, subject, vector, face.quality.score, "added")
        log_subject_event(
            session, principal, subject, "subject.add_images", "added", {"templates": len(faces)}
        )
    return EnrolResult(subject_id, len(faces), [round(f.quality.score, 3) for f in faces])


def _check_count(platform: Platform, images: list[bytes]) -> None:
    limit = min(5, platform.settings.max_images_per_request)
    if not 1 <= len(images) <= limit:
        raise InvalidRequest(f"send between 1 and {limit} images, not {len(images)}")


def _check_fields(platform: Platform, request: EnrolRequest) -> None:
    _check_probe_source(platform, request)
    token = request.payment_token
    if token is not None and looks_like_card_number(token):
        raise InvalidRequest(
            "payment_token looks like a card number; send the payment provider's token instead"
        )
    if request.phone is not None and not _valid_phone(request.phone):
        raise InvalidRequest("phone must be a telephone number of 7 to 15 digits")
    if request.pin is not None:
        check_pin_format(request.pin)
    if request.external_ref is not None and not 1 <= len(request.external_ref) <= 200:
        raise InvalidRequest("external_ref must be 1 to 200 characters")


def _check_probe_source(platform: Platform, request: EnrolRequest) -> None:
    """Exactly one of images and a liveness session; the session when liveness is required."""
    if request.liveness_session_id is not None:
        if request.images:
            raise InvalidRequest("send images or a liveness_session_id, not both")
        return
    if platform.settings.require_liveness:
        raise LivenessRequired("this server enrols only from a live liveness_session_id")
    _check_count(platform, request.images)


def _valid_phone(phone: str) -> bool:
    digits = sum(c.isdigit() for c in phone)
    return bool(_PHONE.match(phone)) and 7 <= digits <= 15


def _check_same_person(platform: Platform, faces: list[Face]) -> None:
    for a, b in itertools.combinations(faces, 2):
        score = a.template.similarity(b.template)
        if platform.calibration is not None and not meets(
            platform.calibration, score, SAME_PERSON_FMR
        ):
            raise InvalidRequest("the images do not show the same person")


def _check_not_enrolled(platform: Platform, network: Network, vectors: list[FloatArray]) -> None:
    table = platform.calibration
    if table is None:
        return
    for vector in vectors:
        hits = platform.galleries.search(
            network.id,
            platform.engine_key,
            vector,
            1,
            accept=lambda found: active_subjects(platform, network.id, found),
        )
        if hits and meets(table, hits[0].score, platform.settings.duplicate_fmr):
            raise DuplicateEnrolment(
                "this face is already enrolled", existing_subject_id=hits[0].subject_id
            )


def _check_is_subject(
    platform: Platform,
    session: Session,
    subject: Subject,
    transform: TemplateTransform,
    faces: list[Face],
) -> None:
    """Added images must match the subject's enrolled templates."""
    stored = subject_vectors(platform, session, subject)
    best = max((float(v @ protected(transform, f)) for v in stored for f in faces), default=-1.0)
    if stored and not meets(platform.calibration, best, SAME_PERSON_FMR):
        raise InvalidRequest("the images do not show the enrolled subject")


def _create_subject(
    platform: Platform, session: Session, network: Network, request: EnrolRequest
) -> Subject:
    subject_id = new_id()
    key, wrapped = platform.vault.new_subject_key(subject_id)
    phone = request.phone
    subject = subjects.create_subject(
        session,
        subject_id=subject_id,
        network_id=network.id,
        wrapped_data_key=wrapped,
        kek_id=platform.vault.kek.key_id,
        external_ref=request.external_ref,
        sealed_phone=seal_text(key, phone, subject_id=subject_id, field="phone") if phone else None,
        sealed_payment_token=(
            seal_text(key, request.payment_token, subject_id=subject_id, field="payment-token")
            if request.payment_token
            else None
        ),
        phone_bucket=platform.vault.phone_bucket(network, phone) if phone else None,
    )
    if request.pin is not None:
        subject.pin_hash = hash_pin(request.pin)
    for purpose in request.consent.purposes:
        subjects.grant_consent(
            session,
            subject_id=subject_id,
            purpose=purpose,
            terms_version=request.consent.terms_version,
            channel=request.consent.channel,
        )
    return subject


def _store_template(
    platform: Platform,
    session: Session,
    subject: Subject,
    vector: FloatArray,
    quality: float,
    source: str,
) -> None:
    info = platform.reader.info
    key = platform.vault.subject_key(subject)
    subjects.add_template(
        session,
        subject=subject,
        engine_id=info.id,
        engine_version=info.version,
        sealed_vector=seal_vector(
            key, vector, subject_id=subject.id, engine_key=platform.engine_key
        ),
        quality=quality,
        source=source,
    )


def _retain(platform: Platform, session: Session, subject: Subject, images: list[bytes]) -> None:
    key = platform.vault.subject_key(subject)
    for data in images:
        subjects.retain_image(
            session,
            subject_id=subject.id,
            sealed_image=seal_image(key, data, subject_id=subject.id),
        )
