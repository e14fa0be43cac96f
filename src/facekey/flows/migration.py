"""Moving a network to another recognition engine, without anyone being unable to pay.

Templates are tied to their engine, so a network that changes engine needs new templates for
everyone. While it migrates, both engines are the network's: enrolment makes templates of
both, every search reads both galleries, each hit through its own engine's calibration, so a
subject is found whichever templates they have (:mod:`facekey.flows.search`). Subjects move
two ways:

- at their next successful checkout or verification, the new engine's template is made from
  the same live probe and stored, and the old engine's templates are removed
  (:func:`retemplate_subject`): the subject is found by the new gallery from then on;
- where the network keeps sealed enrolment images (an explicit setting, and only for subjects
  who consented to ``image_retention``), :func:`retemplate_retained` re-templates from them in
  the background, in batches, resumable at any point (it only ever asks which subjects still
  lack a new template).

:func:`finish_migration` ends it: the old engine's remaining templates are destroyed and the
new engine becomes the network's. It refuses while subjects still lack a new template, unless
forced (they would have to enrol again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy.orm import Session

from facekey.errors import FaceError, InvalidRequest, NotFound
from facekey.flows.enrol import store_templates
from facekey.flows.faces import EngineFace, Probe, enrolment_faces
from facekey.flows.platform import Platform
from facekey.flows.protection import open_image
from facekey.flows.search import SearchProbe, network_of
from facekey.store import audit, subjects, tenants
from facekey.store.tables import Network, Subject

log = logging.getLogger(__name__)

BATCH: Final = 50


@dataclass(frozen=True)
class MigrationStatus:
    """Where a network's move between engines stands."""

    network_id: str
    engine: str
    migrating_to: str | None
    subjects: int
    migrated: int
    pending: int
    pending_with_retained_images: int
    templates_by_engine: dict[str, int]


@dataclass(frozen=True)
class RetemplateReport:
    """What one run of :func:`retemplate_retained` did."""

    retemplated: int
    failed: int
    remaining: int


def start_migration(platform: Platform, network_id: str, target: str) -> MigrationStatus:
    """Begin moving the network to engine ``target`` (installed and calibrated)."""
    info = platform.readers.get(target).info
    if platform.calibration(info) is None:
        raise InvalidRequest(f"{target} has no calibration table; calibrate it first")
    with platform.database.session() as session:
        network = _network(session, network_id)
        if target == network.engine:
            raise InvalidRequest(f"the network already uses {target}")
        if network.migration_engine not in (None, target):
            raise InvalidRequest(f"the network is already moving to {network.migration_engine}")
        network.migration_engine = target
        _audit(session, network, "migration.start", {"from": network.engine, "to": target})
    return migration_status(platform, network_id)


def migration_status(platform: Platform, network_id: str) -> MigrationStatus:
    """How many subjects have a template of the new engine, and how many do not."""
    with platform.database.session() as session:
        network = _network(session, network_id)
        counts = subjects.engine_counts(session, network_id=network.id)
        total = subjects.count_active(session, network_id=network.id)
        pending = pending_retained = 0
        target = network.migration_engine
        if target is not None:
            info = platform.readers.get(target).info

            def lacking(retained: bool) -> int:
                return len(
                    subjects.subjects_without_engine(
                        session,
                        network_id=network.id,
                        engine_id=info.id,
                        engine_version=info.version,
                        with_retained_images=retained,
                    )
                )

            pending, pending_retained = lacking(False), lacking(True)
        return MigrationStatus(
            network_id=network.id,
            engine=network.engine,
            migrating_to=target,
            subjects=total,
            migrated=total - pending if target else 0,
            pending=pending,
            pending_with_retained_images=pending_retained,
            templates_by_engine={key: templates for key, (_, templates) in counts.items()},
        )


def retemplate_subject(
    platform: Platform, session: Session, network: Network, subject_id: str, probe: Probe
) -> bool:
    """After a successful checkout or verification: store the new engine's template of the
    live probe and remove the old engine's. False when there is nothing to do (no migration,
    already moved, or the probe is masked or below the enrolment gate)."""
    target = network.migration_engine
    view = _view(probe, target)
    if target is None or view is None or platform.quality_policy.problems(view.face.quality):
        return False
    subject = session.get(Subject, subject_id)
    if (
        subject is None
        or subject.status != "active"
        or _has_engine(platform, session, subject, target)
    ):
        return False
    vectors = SearchProbe.of(platform, network, Probe((view,))).vectors
    quality = view.face.quality.score
    store_templates(
        platform, session, subject, {k: v[0] for k, v in vectors.items()}, quality, "retemplated"
    )
    _drop_old(platform, session, network, subject)
    return True


def retemplate_retained(
    platform: Platform,
    network_id: str,
    *,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RetemplateReport:
    """Re-template subjects from their retained images, a batch per transaction.

    Stopping at any point loses nothing: the next run starts from whoever still lacks a
    template of the new engine. Subjects whose images no longer give a good face are
    counted as failed and left to re-template at their next checkout.
    """
    network = network_of(platform, network_id)
    target = network.migration_engine
    if target is None:
        raise InvalidRequest("the network is not migrating; start a migration first")
    info = platform.readers.get(target).info
    done = failed = 0
    skipped: set[str] = set()
    while limit is None or done + failed < limit:
        room = BATCH if limit is None else min(BATCH, limit - done - failed)
        with platform.database.session() as session:
            batch = [
                s
                for s in subjects.subjects_without_engine(
                    session,
                    network_id=network.id,
                    engine_id=info.id,
                    engine_version=info.version,
                    with_retained_images=True,
                    limit=BATCH + len(skipped),
                )
                if s not in skipped
            ][:room]
        if not batch:
            break
        for subject_id in batch:
            if _retemplate_one(platform, network, subject_id):
                done += 1
            else:
                failed += 1
                skipped.add(subject_id)
            if progress is not None:
                progress(1)
    remaining = migration_status(platform, network_id).pending_with_retained_images
    return RetemplateReport(done, failed, remaining - len(skipped))


def finish_migration(
    platform: Platform, network_id: str, *, force: bool = False
) -> MigrationStatus:
    """Destroy the old engine's templates and make the new engine the network's."""
    status = migration_status(platform, network_id)
    if status.migrating_to is None:
        raise InvalidRequest("the network is not migrating")
    if status.pending and not force:
        raise InvalidRequest(
            f"{status.pending} subjects have no {status.migrating_to} template yet; wait for "
            "their next checkout, re-template retained images, or finish with --force (they "
            "will have to enrol again)"
        )
    with platform.database.session() as session:
        network = _network(session, network_id)
        old = platform.readers.get(network.engine).info
        destroyed = 0
        for subject_id in subjects.subjects_with_engine(
            session, network_id=network.id, engine_id=old.id, engine_version=old.version
        ):
            destroyed += subjects.remove_templates(
                session,
                subject_id=subject_id,
                network_id=network.id,
                engine_id=old.id,
                engine_version=old.version,
            )
        details = {"from": network.engine, "to": network.migration_engine, "destroyed": destroyed}
        network.engine, network.migration_engine = network.migration_engine or network.engine, None
        _audit(session, network, "migration.finish", details | {"forced": force})
    return migration_status(platform, network_id)


def _retemplate_one(platform: Platform, network: Network, subject_id: str) -> bool:
    with platform.database.session() as session:
        subject = session.get(Subject, subject_id)
        if subject is None or subject.status != "active":
            return False
        key = platform.vault.subject_key(subject)
        images = [
            open_image(key, r.sealed_image, subject_id=subject.id)
            for r in subjects.retained_images_of(session, subject_id=subject.id)
        ]
    target = network.migration_engine or network.engine
    try:
        probes = enrolment_faces(platform, network, images, engines=(target,))
    except FaceError as exc:
        log.info("subject %s: retained images give no usable face (%s)", subject_id, exc)
        return False
    with platform.database.session() as session:
        subject = session.get(Subject, subject_id)
        if subject is None or subject.status != "active":
            return False  # erased meanwhile
        for probe in probes:
            vectors = SearchProbe.of(platform, network, probe).vectors
            store_templates(
                platform,
                session,
                subject,
                {k: v[0] for k, v in vectors.items()},
                probe.face.quality.score,
                "retained",
            )
        _drop_old(platform, session, network, subject)
    return True


def _view(probe: Probe, engine: str | None) -> EngineFace | None:
    return next((v for v in probe.views if v.reader.info.id == engine), None)


def _has_engine(platform: Platform, session: Session, subject: Subject, engine: str) -> bool:
    key = platform.readers.get(engine).engine_key
    return any(t.engine_key == key for t in subjects.templates_of(session, subject_id=subject.id))


def _drop_old(platform: Platform, session: Session, network: Network, subject: Subject) -> None:
    old = platform.readers.get(network.engine).info
    subjects.remove_templates(
        session,
        subject_id=subject.id,
        network_id=network.id,
        engine_id=old.id,
        engine_version=old.version,
    )


def _network(session: Session, network_id: str) -> Network:
    network = tenants.get_network(session, network_id=network_id)
    if network is None:
        raise NotFound(f"no network {network_id}")
    return network


def _audit(session: Session, network: Network, action: str, details: Mapping[str, object]) -> None:
    audit.append_event(
        session,
        network_id=network.id,
        actor=audit.SYSTEM_ACTOR,
        action=action,
        subject_pseudonym=None,
        outcome="done",
        details=dict(details),
    )
