"""Bulk inserts of enrolled subjects: one statement per table per chunk, not one per row.

The caller seals everything first; this module writes one chunk's subjects, consents, templates
and gallery change-log entries in the caller's transaction, after locking the network (the
change-log contract of :mod:`facekey.store.gallery_log`), so a chunk is all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from facekey.store.locking import lock_network
from facekey.store.tables import engine_key, metadata, new_id, utcnow


@dataclass(frozen=True)
class NewSubject:
    """One subject of a bulk chunk, already sealed (no personal data in clear)."""

    subject_id: str
    wrapped_data_key: bytes
    sealed_vector: bytes


def insert_subjects(
    session: Session,
    *,
    network_id: str,
    kek_id: str,
    engine_id: str,
    engine_version: str,
    rows: list[NewSubject],
    purposes: tuple[str, ...],
    terms_version: str,
    channel: str,
    quality: float,
) -> list[int]:
    """Insert one chunk of active subjects with one template each; returns the template ids."""
    if not rows:
        return []
    lock_network(session, network_id=network_id)
    now = utcnow()
    connection = session.connection()  # Core, not the ORM's bulk path: several times faster
    connection.execute(
        insert(metadata.tables["subjects"]),
        [
            {
                "id": r.subject_id,
                "network_id": network_id,
                "wrapped_data_key": r.wrapped_data_key,
                "kek_id": kek_id,
                "created_at": now,
            }
            for r in rows
        ],
    )
    _insert_consents(connection, rows, purposes, terms_version, channel, now)
    template_ids = _insert_templates(
        connection, network_id, engine_id, engine_version, rows, quality, now
    )
    key = engine_key(engine_id, engine_version)
    connection.execute(
        insert(metadata.tables["gallery_changes"]),
        [
            {
                "network_id": network_id,
                "engine_key": key,
                "kind": "add",
                "subject_id": r.subject_id,
                "template_id": t,
                "created_at": now,
            }
            for r, t in zip(rows, template_ids, strict=True)
        ],
    )
    return template_ids


def _insert_consents(
    connection: Connection,
    rows: list[NewSubject],
    purposes: tuple[str, ...],
    terms_version: str,
    channel: str,
    now: datetime,
) -> None:
    connection.execute(
        insert(metadata.tables["consents"]),
        [
            {
                "id": new_id(),
                "subject_id": r.subject_id,
                "purpose": purpose,
                "terms_version": terms_version,
                "channel": channel,
                "granted_at": now,
            }
            for r in rows
            for purpose in purposes
        ],
    )


def _insert_templates(
    connection: Connection,
    network_id: str,
    engine_id: str,
    engine_version: str,
    rows: list[NewSubject],
    quality: float,
    now: datetime,
) -> list[int]:
    table = metadata.tables["templates"]
    result = connection.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True),
        [
            {
                "subject_id": r.subject_id,
                "network_id": network_id,
                "engine_id": engine_id,
                "engine_version": engine_version,
                "sealed_vector": r.sealed_vector,
                "quality": quality,
                "source": "enrolment",
                "created_at": now,
            }
            for r in rows
        ],
    )
    return [int(row[0]) for row in result]
