"""Opt-in enrolment: consent, 1–5 images or a live liveness session, quality gate, duplicate
check, sealed storage.

Templates are made for every engine of the network (its own and, while it migrates, the one it
moves to). Masked faces are refused: every gallery template is of an unmasked face, so the
condition of a comparison is the probe's alone. With ``liveness_session_id`` the template is
the best frame of the caller's live challenge session (:mod:`facekey.flows.liveness`), bound
once in the enrolment's own transaction: a failed enrolment leaves the session usable, a
successful one uses it up. Enrolment images are kept, sealed, only where the network keeps
images and the subject consents to ``image_retention``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Final

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
from facekey.flows.consent import ConsentRequest
from facekey.flows.decisions import meets
from facekey.flows.faces import Probe, enrolment_faces
from facekey.flows.platform import Platform
from facekey.flows.protection import seal_image, seal_text, seal_vector
from facekey.flows.search import SearchProbe, active_subjects, network_of, subject_candidate
from facekey.security.api_keys import Scope
from facekey.security.card_numbers import looks_like_card_number
from facekey.security.pins import check_pin_format, hash_pin
from facekey.store import subjects
from facekey.store.tables import Network, Subject, new_id
from facekey.vision.types import FloatArray

#: Protected template vectors of one face, by engine key.
Vectors = dict[str, FloatArray]

#: Two enrolment images must match at least this well to be one person.
SAME_PERSON_FMR: Final = 1e-3
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,24}$")


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
    faces, qualities = _enrolment_vectors(platform, network, request)
    _check_not_enrolled(platform, network, faces)
    session_id = request.liveness_session_id
    source = "enrolment" if session_id is None else "liveness"
    with platform.database.session() as session:
        if session_id is not None:
            liveness.consume(session, session_id)
        subject = _create_subject(platform, session, network, request)
        for vectors, quality in zip(faces, qualities, strict=True):
            store_templates(platform, session, subject, vectors, quality, source)
        if network.retain_images and request.consent.retains_images and request.images:
            _retain(platform, session, subject, request.images)
        log_subject_event(
            session, principal, subject, "subject.enrol", "enrolled", {"templates": len(faces)}
        )
        subject_id = subject.id
    return EnrolResult(subject_id, len(faces), [round(q, 3) for q in qualities])


def _enrolment_vectors(
    platform: Platform, network: Network, request: EnrolRequest
) -> tuple[list[Vectors], list[float]]:
    """Protected template vectors per engine, and qualities, from the images or the session."""
    if request.liveness_session_id is not None:
        bound = liveness.live_face(
            platform, network, request.liveness_session_id, device_id=None, mode="challenge"
        )
        if not bound.quality_ok:
            raise LowQuality("the liveness session's best frame is below the quality gate")
        key = platform.readers.get(network.engine).engine_key
        # Up to five of the session's frames, chosen for quality and diversity.
        return [{key: vector} for vector in bound.vectors], [bound.quality] * len(bound.vectors)
    probes = enrolment_faces(platform, network, request.images)
    _check_same_person(platform, probes)
    vectors = [_single(SearchProbe.of(platform, network, p)) for p in probes]
    return vectors, [p.face.quality.score for p in probes]


def _single(probe: SearchProbe) -> Vectors:
    """The one frame of an image probe, per engine."""
    return {key: frames[0] for key, frames in probe.vectors.items()}


def add_images(
    platform: Platform, principal: Principal, subject_id: str, images: list[bytes]
) -> EnrolResult:
    """More templates for an enrolled subject, checked to be the same person."""
    principal.require(Scope.ENROL)
    _check_count(platform, images)
    network = network_of(platform, principal.network_id)
    probes = enrolment_faces(platform, network, images)
    _check_same_person(platform, probes)
    with platform.database.session() as session:
        subject = subjects.get_subject(session, network_id=network.id, subject_id=subject_id)
        if subject is None or subject.status != "active":
            raise NotFound(f"no subject {subject_id}")
        searched = [SearchProbe.of(platform, network, p) for p in probes]
        _check_is_subject(platform, session, subject, searched)
        for probe, search_probe in zip(probes, searched, strict=True):
            quality = probe.face.quality.score
            store_templates(platform, session, subject, _single(search_probe), quality, "added")
        log_subject_event(
            session, principal, subject, "subject.add_images", "added", {"templates": len(probes)}
        )
    qualities = [round(p.face.quality.score, 3) for p in probes]
    return EnrolResult(subject_id, len(probes), qualities)


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


def _check_same_person(platform: Platform, probes: list[Probe]) -> None:
    for a, b in itertools.combinations(probes, 2):
        score = a.face.template.similarity(b.face.template)
        calibration = platform.calibration(a.views[0].reader.info)
        if calibration is not None and not meets(calibration.unmasked, score, SAME_PERSON_FMR):
            raise InvalidRequest("the images do not show the same person")


def _check_not_enrolled(platform: Platform, network: Network, faces: list[Vectors]) -> None:
    """No face may be enrolled already, in any of the network's galleries."""
    for vectors in faces:
        for key, vector in vectors.items():
            calibration = platform.calibration(platform.readers.for_key(key).info)
            if calibration is None:
                continue
            hits = platform.galleries.search(
                network.id,
                key,
                vector,
                1,
                accept=lambda found: active_subjects(platform, network.id, found),
            )
            if hits and meets(calibration.unmasked, hits[0].score, platform.settings.duplicate_fmr):
                raise DuplicateEnrolment(
                    "this face is already enrolled", existing_subject_id=hits[0].subject_id
                )


def _check_is_subject(
    platform: Platform, session: Session, subject: Subject, probes: list[SearchProbe]
) -> None:
    """Added images must match the subject's enrolled templates."""
    readings = [subject_candidate(platform, session, subject, p)[0] for p in probes]
    fmrs = [r.fmr for r in readings if r is not None and not r.below_table]
    if not fmrs or min(fmrs) > SAME_PERSON_FMR:
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


def store_templates(
    platform: Platform,
    session: Session,
    subject: Subject,
    vectors: Vectors,
    quality: float,
    source: str,
) -> None:
    """Seal and store one face's template of each engine (the gallery log records them)."""
    key = platform.vault.subject_key(subject)
    for engine_key, vector in vectors.items():
        info = platform.readers.for_key(engine_key).info
        subjects.add_template(
            session,
            subject=subject,
            engine_id=info.id,
            engine_version=info.version,
            sealed_vector=seal_vector(key, vector, subject_id=subject.id, engine_key=engine_key),
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
