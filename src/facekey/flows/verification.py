"""1:1 verification: does this image show this subject, who consents to the purpose?

The probe is read against the subject's templates of every engine of the network, each through
its own calibration table; several templates are several chances for a stranger, so the
decision bounds k · FMR(score) by the network's verification target (k: templates compared).
A subject of a network that migrates between engines moves to the new engine on a success.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from facekey.errors import NotFound
from facekey.flows import risk
from facekey.flows.auth import Principal
from facekey.flows.faces import probe_face
from facekey.flows.migration import retemplate_subject
from facekey.flows.platform import Platform
from facekey.flows.search import SearchProbe, network_of, subject_candidate, wanted_purposes
from facekey.security.api_keys import Scope
from facekey.store import audit, subjects
from facekey.store.tables import Network, Subject


@dataclass(frozen=True)
class Verification:
    """A 1:1 decision against one subject."""

    match: bool
    score: float
    fmr: float | None
    fmr_target: float


def verify(
    platform: Platform, principal: Principal, subject_id: str, image: bytes, *, purpose: str
) -> Verification:
    """1:1: does the image show this subject, who consents to ``purpose``?"""
    principal.require(Scope.TERMINAL, Scope.ENROL)
    (wanted,) = wanted_purposes(purpose, required=True)
    network = network_of(platform, principal.network_id)
    faces = probe_face(platform, network, image)
    probe = SearchProbe.of(platform, network, faces)
    target = platform.settings.verify_fmr_target
    with platform.database.session() as session:
        subject = _consenting_subject(session, network, subject_id, wanted)
        best, compared = subject_candidate(platform, session, subject, probe)
        fmr = None if best is None else risk.best_fmr(best)
        # Several templates are several chances for a stranger: the union bound again.
        matched = fmr is not None and risk.estimated_false_match(compared, fmr) <= target
        score = -1.0 if best is None else best.score
        audit.append_event(
            session,
            network_id=network.id,
            actor=principal.key_id,
            action="verify",
            subject_pseudonym=subject.pseudonym,
            outcome="match" if matched else "no-match",
            details={"purpose": wanted, "score": round(score, 6), "templates": compared},
        )
        if matched:
            retemplate_subject(platform, session, network, subject.id, faces)
    return Verification(matched, round(score, 6), fmr, target)


def _consenting_subject(
    session: Session, network: Network, subject_id: str, purpose: str
) -> Subject:
    """The active subject if it consents to ``purpose``; NotFound either way otherwise, so
    that a caller cannot tell a withdrawn consent from an unknown id."""
    subject = subjects.get_subject(session, network_id=network.id, subject_id=subject_id)
    consenting = subject is not None and subjects.subjects_with_purpose(
        session, network_id=network.id, subject_ids={subject_id}, purpose=purpose
    )
    if subject is None or subject.status != "active" or not consenting:
        raise NotFound(f"no subject {subject_id} with consent for {purpose}")
    return subject
