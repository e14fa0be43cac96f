"""The gallery change log: what gallery indexes replay to stay a faithful cache of the templates.

Entries are written in the same transaction as the change they describe, after
:func:`facekey.store.locking.lock_network`, so within a network sequences become visible in
increasing order: a reader that remembers the last sequence it applied never skips an entry
committed later with a smaller number.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facekey.store.locking import lock_network
from facekey.store.tables import GalleryChange, Subject, Template, engine_key


def record_change(
    session: Session,
    *,
    network_id: str,
    engine_key: str,
    kind: str,
    subject_id: str,
    template_id: int | None = None,
) -> GalleryChange:
    """Append one change (``kind``: "add", "remove_subject" or "remove_template")."""
    lock_network(session, network_id=network_id)
    change = GalleryChange(
        network_id=network_id,
        engine_key=engine_key,
        kind=kind,
        subject_id=subject_id,
        template_id=template_id,
    )
    session.add(change)
    session.flush()
    return change


def current_sequence(session: Session, *, network_id: str, engine_key: str) -> int:
    """The newest sequence of this gallery's log, 0 when it is empty."""
    stmt = select(func.max(GalleryChange.sequence)).where(
        GalleryChange.network_id == network_id, GalleryChange.engine_key == engine_key
    )
    return session.scalar(stmt) or 0


def changes_since(
    session: Session, *, network_id: str, engine_key: str, sequence: int
) -> list[GalleryChange]:
    """This gallery's changes with a sequence greater than ``sequence``, oldest first."""
    stmt = (
        select(GalleryChange)
        .where(
            GalleryChange.network_id == network_id,
            GalleryChange.engine_key == engine_key,
            GalleryChange.sequence > sequence,
        )
        .order_by(GalleryChange.sequence)
    )
    return list(session.scalars(stmt))


def gallery_snapshot(
    session: Session, *, network_id: str, engine_id: str, engine_version: str
) -> tuple[int, list[tuple[Template, Subject]]]:
    """Every live template of one gallery with its subject, and the sequence they reflect.

    The templates and the sequence come from ONE statement, hence one snapshot on every backend
    (separate statements may see different commits under PostgreSQL's READ COMMITTED). With no
    live template, the sequence read before the statement is returned: changes after it are
    replayed, which at worst removes a subject that is already absent.
    """
    key = engine_key(engine_id, engine_version)
    before = current_sequence(session, network_id=network_id, engine_key=key)
    head = (
        select(func.coalesce(func.max(GalleryChange.sequence), 0))
        .where(GalleryChange.network_id == network_id, GalleryChange.engine_key == key)
        .scalar_subquery()
    )
    stmt = (
        select(head, Template, Subject)
        .join(Subject, Subject.id == Template.subject_id)
        .where(
            Template.network_id == network_id,
            Template.engine_id == engine_id,
            Template.engine_version == engine_version,
            Subject.status == "active",
        )
        .order_by(Template.id)
    )
    rows = session.execute(stmt).all()
    if not rows:
        return before, []
    return int(rows[0][0]), [(row[1], row[2]) for row in rows]
