"""1:N identification against a network's galleries, and the search both use.

A search reads every hit through the calibration table of its engine and of the probe's
condition (masked or not) and counts every template it searched: a network that migrates
between engines is searched in both galleries, each read with its own table
(:func:`search_network`). Identification names a match with the rule checkout uses
(:mod:`facekey.flows.risk`): the chance that any of the N templates searched is a stranger's
reaching the best score, N · FMR, must be within the network's target, and the runner-up must
be far enough behind. A terminal learns only the decision and, on a match, that subject.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from facekey.calibration import Condition
from facekey.errors import InvalidRequest, NotFound
from facekey.flows import risk
from facekey.flows.auth import Principal
from facekey.flows.faces import Probe, probe_face, protected
from facekey.flows.platform import Platform
from facekey.flows.protection import open_vector
from facekey.gallery.index import Hit
from facekey.gallery.sync import Accept
from facekey.security.api_keys import Scope
from facekey.store import audit, subjects, tenants
from facekey.store.tables import Network, Subject
from facekey.vision.types import FloatArray

PURPOSES: Final = ("payment", "personalization")
#: Subjects fetched per gallery: the best and the runner-up decide the margin rule.
SEARCH_DEPTH: Final = 3
IDENTIFY_RULE: Final = "union-bound"


@dataclass(frozen=True)
class SearchProbe:
    """A probe as galleries are searched with it: protected vectors by engine key, one row
    per frame (a burst's chosen frames, or one image), and the condition its comparisons are
    read under.

    Several frames are fused at the score level: each subject's score is its best over the
    frames and its templates, and every frame counts in N (union bound). Measured on LFW,
    averaging the frames' templates instead raised strangers' scores against the calibration
    (FMR 1.8e-3 at the 1e-3 threshold), the union bound kept it (docs/accuracy.md).
    """

    vectors: dict[str, FloatArray]
    condition: Condition

    def __post_init__(self) -> None:
        if not self.vectors or any(v.ndim != 2 or not len(v) for v in self.vectors.values()):
            raise ValueError("a search probe needs frames × dimension vectors per engine")

    @property
    def frames(self) -> int:
        return len(next(iter(self.vectors.values())))

    @classmethod
    def of(cls, platform: Platform, network: Network, probe: Probe) -> SearchProbe:
        """The probe's face through the network's transform of each engine."""
        vectors = {
            view.reader.engine_key: protected(
                platform.vault.transform(network, view.reader.info), view.face
            )[np.newaxis]
            for view in probe.views
        }
        return cls(vectors, probe.condition)


@dataclass(frozen=True)
class NetworkSearch:
    """Re-checked candidates of every gallery searched, best first, and N (templates)."""

    candidates: tuple[risk.Candidate, ...]
    gallery_size: int

    def outcome(self) -> risk.SearchOutcome:
        return risk.SearchOutcome(self.candidates, max(self.gallery_size, len(self.candidates)))


@dataclass(frozen=True)
class Identification:
    """What a terminal learns: the decision, the rule behind it and, on a match, who."""

    match: str | None
    rule: str
    gallery_size: int
    false_match_target: float
    estimated_false_match: float | None


def network_of(platform: Platform, network_id: str) -> Network:
    """The caller's network (detached: only its columns are read afterwards)."""
    with platform.database.read_session() as session:
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
    with platform.database.read_session() as session:
        allowed: set[str] = set()
        for purpose in purposes:
            allowed |= subjects.subjects_with_purpose(
                session, network_id=network_id, subject_ids=ids, purpose=purpose
            )
    return [h for h in hits if h.subject_id in allowed]


def search_network(
    platform: Platform, network: Network, probe: SearchProbe, *, accept: Accept
) -> NetworkSearch:
    """Search the network's gallery of each engine the probe has a vector of.

    Engines without a calibration table contribute their templates to N but no candidate:
    nothing they find can be read as a false-match rate.
    """
    readings: list[risk.Candidate] = []
    searched = 0
    for engine_key, frames in probe.vectors.items():
        gallery = platform.galleries.get(network.id, engine_key)
        hits = [h for frame in frames for h in gallery.search(frame, SEARCH_DEPTH, accept=accept)]
        searched += len(gallery.index) * len(frames)
        calibration = platform.calibration(platform.readers.for_key(engine_key).info)
        if calibration is not None:
            table = calibration.table(probe.condition)
            readings += risk.read_candidates(((h.subject_id, h.score) for h in hits), table)
    return NetworkSearch(risk.rank_candidates(readings), searched)


def identify(
    platform: Platform, principal: Principal, image: bytes, *, purpose: str | None = None
) -> Identification:
    """Search the network; name a match only when N · FMR and the margin allow it."""
    principal.require(Scope.TERMINAL)
    purposes = wanted_purposes(purpose, required=False)
    network = network_of(platform, principal.network_id)
    probe = SearchProbe.of(platform, network, probe_face(platform, network, image))
    found = search_network(
        platform,
        network,
        probe,
        accept=lambda hits: recheck_hits(platform, network.id, hits, purposes=purposes),
    )
    result = _identification(platform, found)
    _audit_identify(platform, principal, result, found, purpose)
    return result


def wanted_purposes(purpose: str | None, *, required: bool) -> tuple[str, ...]:
    """The purposes a search asks for: the one named, or any when none is and may be."""
    if purpose is None and not required:
        return PURPOSES
    if purpose not in PURPOSES:
        raise InvalidRequest(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    return (purpose,)


def _identification(platform: Platform, found: NetworkSearch) -> Identification:
    target = platform.settings.identify_false_match_target
    ratio = platform.risk_config.margin_fmr_ratio
    outcome = found.outcome()
    best = outcome.candidates[0] if outcome.candidates else None
    estimate = None
    if best is not None:
        estimate = risk.estimated_false_match(outcome.gallery_size, risk.best_fmr(best))
    matched = risk.names_a_match(outcome, target, ratio)
    return Identification(
        match=best.subject_id if matched and best is not None else None,
        rule=IDENTIFY_RULE,
        gallery_size=outcome.gallery_size,
        false_match_target=target,
        estimated_false_match=estimate,
    )


def _audit_identify(
    platform: Platform,
    principal: Principal,
    result: Identification,
    found: NetworkSearch,
    purpose: str | None,
) -> None:
    with platform.database.session() as session:
        pseudonym = None
        if result.match is not None:
            pseudonym = session.scalar(select(Subject.pseudonym).where(Subject.id == result.match))
        best = found.candidates[0] if found.candidates else None
        audit.append_event(
            session,
            network_id=principal.network_id,
            actor=principal.key_id,
            action="identify",
            subject_pseudonym=pseudonym,
            outcome="match" if result.match else "no-match",
            details={
                "purpose": purpose,
                "rule": result.rule,
                "gallery_size": result.gallery_size,
                "best_score": None if best is None else round(best.score, 6),
                "best_fmr": None if best is None else best.fmr,
                "calibration": None if best is None else best.calibration,
            },
        )


def subject_vectors(
    platform: Platform, session: Session, subject: Subject, engine_key: str
) -> list[FloatArray]:
    """The subject's protected template vectors of one engine, opened."""
    key = platform.vault.subject_key(subject)
    return [
        open_vector(key, t.sealed_vector, subject_id=subject.id, engine_key=t.engine_key)
        for t in subjects.templates_of(session, subject_id=subject.id)
        if t.engine_key == engine_key
    ]


def subject_candidate(
    platform: Platform, session: Session, subject: Subject, probe: SearchProbe
) -> tuple[risk.Candidate | None, int]:
    """The probe read against one subject's templates of every engine: the best reading
    (None when no engine has both templates and a table) and how many templates it saw."""
    readings: list[risk.Candidate] = []
    compared = 0
    for engine_key, frames in probe.vectors.items():
        stored = subject_vectors(platform, session, subject, engine_key)
        calibration = platform.calibration(platform.readers.for_key(engine_key).info)
        compared += len(stored) * len(frames)
        if not stored or calibration is None:
            continue
        score = float(np.max(np.stack(stored) @ frames.T))
        table = calibration.table(probe.condition)
        readings += risk.read_candidates([(subject.id, score)], table)
    ranked = risk.rank_candidates(readings)
    return (ranked[0] if ranked else None), compared
