"""The database seen as a gallery source: templates opened from the vault, in change order."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from facekey.flows.protection import Vault, open_vector
from facekey.gallery.sync import Change, Entry
from facekey.store import gallery_log
from facekey.store.database import Database
from facekey.store.tables import GalleryChange, Subject, Template


class StoreGallerySource:
    """Implements :class:`facekey.gallery.sync.GallerySource` over the store."""

    def __init__(self, database: Database, vault: Vault) -> None:
        self._database = database
        self._vault = vault

    def current_sequence(self, *, network_id: str, engine_key: str) -> int:
        with self._database.read_session() as session:
            return gallery_log.current_sequence(
                session, network_id=network_id, engine_key=engine_key
            )

    def changes_since(self, *, network_id: str, engine_key: str, sequence: int) -> list[Change]:
        with self._database.read_session() as session:
            rows = gallery_log.changes_since(
                session, network_id=network_id, engine_key=engine_key, sequence=sequence
            )
            return list(self._changes(session, rows))

    def load_all(self, *, network_id: str, engine_key: str) -> tuple[int, list[Entry]]:
        engine_id, engine_version = engine_key.split(":", 1)
        with self._database.read_session() as session:
            sequence, rows = gallery_log.gallery_snapshot(
                session, network_id=network_id, engine_id=engine_id, engine_version=engine_version
            )
            keys: dict[str, bytes] = {}
            return sequence, [Entry(t.id, s.id, self._open(keys, t, s)) for t, s in rows]

    def _changes(self, session: Session, rows: Iterable[GalleryChange]) -> Iterable[Change]:
        keys: dict[str, bytes] = {}
        for row in rows:
            if row.kind == "remove_subject":
                yield Change(row.sequence, "remove_subject", row.subject_id)
                continue
            if row.kind == "remove_template":
                yield Change(row.sequence, "remove_template", row.subject_id, row.template_id)
                continue
            found = session.execute(
                select(Template, Subject)
                .join(Subject, Subject.id == Template.subject_id)
                .where(Template.id == row.template_id, Subject.status == "active")
            ).first()
            if found is not None:  # gone since: its removal follows later in the log
                template, subject = found[0], found[1]
                vector = self._open(keys, template, subject)
                yield Change(row.sequence, "add", subject.id, template.id, vector)

    def _open(self, keys: dict[str, bytes], template: Template, subject: Subject) -> np.ndarray:
        key = keys.get(subject.id)
        if key is None:
            key = keys[subject.id] = self._vault.subject_key(subject)
        return open_vector(
            key, template.sealed_vector, subject_id=subject.id, engine_key=template.engine_key
        )
