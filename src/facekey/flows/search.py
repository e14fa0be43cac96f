"""1:N identification and 1:1 verification against a network's gallery."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from facekey.errors import InvalidRequest, NotFound
from facekey.flows.auth import Principal
from facekey.flows.decisions import fmr_of, meets
from facekey.flows.faces import probe_face, protected
from facekey.flows.platform import Platform
from facekey.flows.protection import open_vector
from facekey.gallery.index import Hit
from facekey.security.api_keys import Scope
from facekey.store import audit, subjects, tenants
from facekey.store.tables import Network, Subject
from facekey.vision.types import FloatArray

PURPOSES: Final = ("payment", "personalization")
MAX_CANDIDATES: Final = 20


@dataclass(frozen=True)
class Candidate:
    subject_id: str
    score: float
    fmr: float | None


@dataclass(frozen=True)
class Identification:
    candidates: list[Candidate]
    match: str | None
    fmr_target: float


def network_of(platform: Platform, network_id: str) -> Network:
    """The caller's network (detached: only its columns are read afterwards)."""
    with platform.database.session() as session:
        network = tenants.get_network(session, network_id=network_id)
        if network is None:
            raise NotFound(f"no network {network_id}")
        session.expunge(network)
        return network


def active_subjects(platform: Platform, network_id: str, hits: list[Hit]) -> list[Hit]:
    """The hits whose subject is active in the network (any consent)."""
    return recheck_hits(platform, network_id, hits, purposes=PURPOSES)


def recheck_hits(
    platform: Platform, network_id: str, hits: list[Hit], *, purposes: Collection[str]
) -> list[Hit]:
    """Every hit re-checked against the database: active subject, consent for a purpose."""
    ids = {h.subject_id for h in hits}
    with platform.database.session() as session:
        allowed: set[str] = set()
        for purpose in purposes:
            allowed |= subjects.subjects_with_purpose(
                session, network_id=network_id, subject_ids=ids, purpose=purpose
            )
    return [h for h in hits if h.subject_id in allowed]


def identify(
    platform: Platform,
    principal: Principal,
    image: bytes,
    *,
    purpose: str | None = None,
    max_candidates: int = 5,
) -> Identification:
    """Search the network's gallery; name a match only at the configured FMR target."""
    principal.require(Scope.TERMINAL)
    if purpose is not None and purpose not in PURPOSES:
        raise InvalidRequest(f"unknown purpose {purpose!r}; use one of {', '.join(PURPOSES)}")
    if not 1 <= max_candidates <= MAX_CANDIDATES:
        raise InvalidRequest(f"max_candidates must be between 1 and {MAX_CANDIDATES}")
    face = probe_face(platform, image)
    network = network_of(platform, principal.network_id)
    vector = protected(platform.vault.transform(network, platform.reader.info), face)
    purposes = PURPOSES if purpose is None else (purpose,)
    hits = platform.galleries.search(
        network.id,
        platform.engine_key,
        vector,
        max_candidates,
        accept=lambda found: recheck_hits(platform, network.id, found, purposes=purposes),
    )
    result = _identification(platform, hits)
    _audit_identify(platform, principal, result, purpose)
    return result


def _identification(platform: Platform, hits: list[Hit]) -> Identification:
    table, target = platform.calibration, platform.settings.identify_fmr_target
    candidates = [Candidate(h.subject_id, round(h.score, 6), fmr_of(table, h.score)) for h in hits]
    match = hits[0].subject_id if hits and meets(table, hits[0].score, target) else None
    return Identification(candidates, match, target)


def _audit_identify(
    platform: Platform, principal: Principal, result: Identification, purpose: str | None
) -> None:
    with platform.database.session() as session:
        pseudonym = None
        if result.match is not None:
            pseudonym = session.scalar(select(Subject.pseudonym).where(Subject.id == result.match))
        best = result.candidates[0].score if result.candidates else None
        audit.append_event(
            session,
            network_id=principal.network_id,
            actor=principal.key_id,
            action="identify",
            subject_pseudonym=pseudonym,
            outcome="match" if result.match else "no-match",
            details={"purpose": purpose, "candidates": len(result.candidates), "best_score": best},
        )


def subject_vectors(platform: Platform, session: Session, subject: Subject) -> list[FloatArray]:
    """The subject's protected template vectors of the current engine, opened."""
    key = platform.vault.subject_key(subject)
    return [
        open_vector(key, t.sealed_vector, subject_id=subject.id, engine_key=t.engine_key)
        for t in subjects.templates_of(session, subject_id=subject.id)
        if t.engine_key == platform.engine_key
    ]


def verify(
    platform: Platform, principal: Principal, subject_id: str, image: bytes
) -> dict[str, Any]:
    """1:1: does the image show this subject?"""
    principal.require(Scope.TERMINAL, Scope.ENROL)
    face = probe_face(platform, image)
    network = network_of(platform, principal.network_id)
    vector = protected(platform.vault.transform(network, platform.reader.info), face)
    with platform.database.session() as session:
        subject = subjects.get_subject(session, network_id=network.id, subject_id=subject_id)
        if subject is None or subject.status != "active":
            raise NotFound(f"no subject {subject_id}")
        stored = subject_vectors(platform, session, subject)
        score = max((float(np.dot(v, vector)) for v in stored), default=-1.0)
        matched = meets(platform.calibration, score, platform.settings.identify_fmr_target)
        audit.append_event(
            session,
            network_id=network.id,
            actor=principal.key_id,
            action="verify",
            subject_pseudonym=subject.pseudonym,
            outcome="match" if matched else "no-match",
            details={"score": round(score, 6)},
        )
    return {"match": matched, "score": round(score, 6), "fmr": fmr_of(platform.calibration, score)}
