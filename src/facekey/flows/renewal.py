"""Renewing a network's template transform: every stored template moves to a new secret.

Templates are stored and searched through a secret orthonormal transform per network. Renewal
draws a new secret, bumps the transform version, moves every template from the old space to
the new one (cosines are unchanged, so matching is unchanged) and logs gallery changes so that
every worker reloads the moved vectors before its next search. Templates taken from a backup
before the renewal no longer line up with anything the network stores or searches. Phone
buckets and customer ids keep their own secret, so they do not move.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from facekey.errors import NotFound
from facekey.flows.protection import Vault, open_vector, seal_vector
from facekey.security.transform import TemplateTransform, retransform
from facekey.store import audit, gallery_log, tenants
from facekey.store.database import Database
from facekey.store.locking import lock_network
from facekey.store.tables import LivenessSession, Network, Subject, Template
from facekey.vision.types import FloatArray


@dataclass(frozen=True)
class _Opened:
    """A stored template, opened, with the transform it was made in."""

    template: Template
    subject: Subject
    vector: FloatArray
    transform: TemplateTransform


@dataclass(frozen=True)
class Renewal:
    """What a renewal moved: every template, to the transform of ``transform_version``."""

    network_id: str
    transform_version: int
    templates_moved: int
    liveness_sessions_cleared: int


def renew_transform(database: Database, vault: Vault, network_id: str) -> Renewal:
    """Move the network to a new transform secret; returns what moved."""
    with database.session() as session:
        lock_network(session, network_id=network_id)
        network = tenants.get_network(session, network_id=network_id)
        if network is None:
            raise NotFound(f"no network {network_id}")
        old_version = network.transform_version
        moved = _open_all(session, vault, network)
        _new_secret(vault, network)
        session.flush()
        for opened in moved:
            _reseal(vault, network, opened)
        _log_changes(session, network_id, moved)
        expired = _drop_session_templates(session, network_id)
        audit.append_event(
            session,
            network_id=network_id,
            actor=audit.SYSTEM_ACTOR,
            action="transform.renew",
            subject_pseudonym=None,
            outcome="renewed",
            details={"from_version": old_version, "templates": len(moved)},
        )
        return Renewal(network_id, network.transform_version, len(moved), expired)


def _open_all(session: Session, vault: Vault, network: Network) -> list[_Opened]:
    """Every active template of the network, opened, with the transform it was made in."""
    rows = session.execute(
        select(Template, Subject)
        .join(Subject, Subject.id == Template.subject_id)
        .where(Template.network_id == network.id, Subject.status == "active")
        .order_by(Template.id)
    ).all()
    moved = []
    for template, subject in rows:
        key = vault.subject_key(subject)
        vector = open_vector(
            key, template.sealed_vector, subject_id=subject.id, engine_key=template.engine_key
        )
        old = vault.transform_for(network, template.engine_key, len(vector))
        moved.append(_Opened(template, subject, vector, old))
    return moved


def _new_secret(vault: Vault, network: Network) -> None:
    kept = vault.keep_pseudonyms(network)
    if kept is not None:
        network.wrapped_pseudonym_secret = kept
    network.wrapped_transform_secret = vault.new_network_secret(network.id)
    network.transform_version += 1


def _reseal(vault: Vault, network: Network, opened: _Opened) -> None:
    template, subject = opened.template, opened.subject
    new = vault.transform_for(network, template.engine_key, len(opened.vector))
    moved = retransform(opened.vector, opened.transform, new)
    template.sealed_vector = seal_vector(
        vault.subject_key(subject), moved, subject_id=subject.id, engine_key=template.engine_key
    )


def _log_changes(session: Session, network_id: str, moved: list[_Opened]) -> None:
    """Remove and re-add every moved template in every gallery, so workers reload them."""
    by_gallery: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for opened in moved:
        by_gallery[opened.template.engine_key][opened.subject.id].append(opened.template.id)
    for engine_key, subjects in by_gallery.items():
        for subject_id, template_ids in subjects.items():
            gallery_log.record_change(
                session,
                network_id=network_id,
                engine_key=engine_key,
                kind="remove_subject",
                subject_id=subject_id,
            )
            for template_id in template_ids:
                gallery_log.record_change(
                    session,
                    network_id=network_id,
                    engine_key=engine_key,
                    kind="add",
                    subject_id=subject_id,
                    template_id=template_id,
                )


def _drop_session_templates(session: Session, network_id: str) -> int:
    """Best-frame templates of liveness sessions were made in the old space: drop them."""
    result = session.execute(
        update(LivenessSession)
        .where(
            LivenessSession.network_id == network_id,
            LivenessSession.sealed_best_template.is_not(None),
        )
        .values(sealed_best_template=None, status="expired")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
