"""Loading many templates at once: migrations, batch re-templating and the scale benchmarks.

The vectors are embeddings of the network's engine (for example computed by a batch job from
retained images, or exported by a previous system for the same engine). Each is transformed
with the network's secret transform and sealed under a new subject's data key, exactly like an
enrolment, then written in chunks: one transaction per chunk holds its subjects, their consent,
their templates and the gallery change-log entries. A load killed at any moment leaves whole
chunks only, each visible to every worker through the change log; running it again adds the
rest (the caller keeps track of what it loaded: subject ids are returned per chunk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from facekey.engines.base import EngineInfo
from facekey.errors import NotFound
from facekey.flows.protection import Vault, engine_key_of, seal_vector
from facekey.store import audit, tenants
from facekey.store.bulk import NewSubject, insert_subjects
from facekey.store.database import Database
from facekey.store.tables import new_id
from facekey.vision.types import FloatArray

CHUNK: Final = 2_000
"""Subjects per transaction."""


@dataclass(frozen=True)
class BulkConsent:
    """The consent every subject of a bulk load gave (recorded per subject)."""

    purposes: tuple[str, ...] = ("payment",)
    terms_version: str = "1"
    channel: str = "bulk"


@dataclass(frozen=True)
class LoadedChunk:
    """One committed chunk: its subjects and their template ids, in input order."""

    subject_ids: list[str]
    template_ids: list[int]


def load_templates(
    database: Database,
    vault: Vault,
    network_id: str,
    info: EngineInfo,
    vectors: FloatArray,
    *,
    consent: BulkConsent | None = None,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> list[LoadedChunk]:
    """Enrol one subject per row of ``vectors`` (N×D embeddings of ``info``'s engine)."""
    if vectors.ndim != 2 or vectors.shape[1] != info.dimension:
        raise ValueError(f"vectors must have shape (N, {info.dimension}), got {vectors.shape}")
    loaded = []
    for part in _chunks(vectors, chunk):
        loaded.append(
            _load_chunk(database, vault, network_id, info, part, consent or BulkConsent())
        )
        if progress is not None:
            progress(len(part))
    return loaded


def _chunks(vectors: FloatArray, size: int) -> Iterator[FloatArray]:
    for start in range(0, len(vectors), size):
        yield vectors[start : start + size]


def _load_chunk(
    database: Database,
    vault: Vault,
    network_id: str,
    info: EngineInfo,
    vectors: FloatArray,
    consent: BulkConsent,
) -> LoadedChunk:
    with database.session() as session:
        network = tenants.get_network(session, network_id=network_id)
        if network is None:
            raise NotFound(f"no network {network_id}")
        transformed = vault.transform(network, info).apply(np.asarray(vectors, np.float32))
        rows = [_sealed(vault, vector, engine_key_of(info)) for vector in transformed]
        template_ids = insert_subjects(
            session,
            network_id=network_id,
            kek_id=vault.kek.key_id,
            engine_id=info.id,
            engine_version=info.version,
            rows=rows,
            purposes=consent.purposes,
            terms_version=consent.terms_version,
            channel=consent.channel,
            quality=1.0,
        )
        audit.append_event(
            session,
            network_id=network_id,
            actor=audit.SYSTEM_ACTOR,
            action="subjects.bulk_load",
            subject_pseudonym=None,
            outcome="enrolled",
            details={"subjects": len(rows), "engine": engine_key_of(info)},
        )
        return LoadedChunk([r.subject_id for r in rows], template_ids)


def _sealed(vault: Vault, vector: FloatArray, engine_key: str) -> NewSubject:
    subject_id = new_id()
    key, wrapped = vault.new_subject_key(subject_id)
    return NewSubject(
        subject_id, wrapped, seal_vector(key, vector, subject_id=subject_id, engine_key=engine_key)
    )
