"""Milvus as a gallery backend: for a network that outgrows one machine's index.

One collection per (network, engine) holds ``template_id`` (primary key), ``subject_id`` and the
*transformed* template; the change-log sequence it reflects is a collection property, so a
restarted worker replays only the changes since (like a snapshot, with Milvus as the store).
Every process applies the change log idempotently (upserts and deletes), and every hit is still
re-checked against the database by the flows, so a subject erased in the database is never
accepted whatever the collection holds at that instant.

Tests run against milvus-lite (``pymilvus`` with a file URI, in the process); a standalone server
or a cluster is the same code with ``FACEKEY_MILVUS_URI=http://host:19530``. Milvus does not seal
its files with facekey's keys: use its own encryption at rest, or encrypted volumes.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np

from facekey.errors import FacekeyError
from facekey.gallery.index import (
    AnyFloatArray,
    FloatArray,
    Hit,
    IdArray,
    check_query,
    widening_search,
)

MAX_LIMIT: Final = 16_384
"""The most results one Milvus search returns."""
SEQUENCE_PROPERTY: Final = "facekey.sequence"
COUNT_TTL_S: Final = 5.0
"""How long a count of subjects is reused (the risk policy reads it on every checkout)."""
INSERT_BATCH: Final = 5_000
_SUBJECT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class MilvusUnavailable(FacekeyError):
    """pymilvus is not installed, or the Milvus server cannot be reached."""


def connect(uri: str, *, token: str | None = None) -> Any:
    """A ``MilvusClient`` for a server URI or a milvus-lite file."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise MilvusUnavailable(
            "the Milvus backend needs pymilvus: pip install 'facekey[milvus]'"
        ) from None
    if not uri.startswith(("http://", "https://", "tcp://", "unix:")):
        # milvus-lite answers a call pymilvus makes (AllocTimestamp) with "not implemented" and
        # its in-process gRPC server logs each one as an error; the call is optional.
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    return MilvusClient(uri, token=token or "")


def collection_name(network_id: str, engine_key: str) -> str:
    """A valid, stable collection name for one gallery."""
    digest = hashlib.sha256(f"{network_id}\x00{engine_key}".encode()).hexdigest()[:32]
    return f"facekey_{digest}"


class MilvusGallery:
    """A :class:`~facekey.gallery.backend.GalleryBackend` over one Milvus collection."""

    def __init__(
        self,
        client: Any,
        *,
        network_id: str,
        engine_key: str,
        dimension: int,
        index_type: str = "HNSW",
        index_params: dict[str, Any] | None = None,
        search_params: dict[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._name = collection_name(network_id, engine_key)
        self._dimension = dimension
        self._index_type = index_type
        self._index_params = index_params or {"M": 32, "efConstruction": 200}
        self._search_params = search_params or {"ef": 256}
        self._lock = threading.Lock()
        self._counted: tuple[float, int] | None = None
        if not client.has_collection(self._name):
            self._create()

    @property
    def collection(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def subjects(self) -> int:
        """Templates stored, cached a few seconds: an upper bound of the subjects (Milvus cannot
        count distinct values), which keeps the risk policy's N × FMR estimate conservative."""
        with self._lock:
            now = time.monotonic()
            if self._counted is None or now - self._counted[0] > COUNT_TTL_S:
                self._counted = (now, len(self))
            return self._counted[1]

    def __len__(self) -> int:
        rows = self._client.query(self._name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def __contains__(self, template_id: object) -> bool:
        if not isinstance(template_id, int | np.integer):
            return False
        return bool(self._client.query(self._name, ids=[int(template_id)]))

    def template_ids(self, subject_id: str) -> list[int]:
        rows = self._client.query(
            self._name, filter=_subject_filter(subject_id), output_fields=["template_id"]
        )
        return sorted(int(row["template_id"]) for row in rows)

    def add(
        self,
        template_ids: IdArray | Sequence[int],
        subject_ids: Sequence[str],
        vectors: AnyFloatArray,
    ) -> None:
        """Upsert templates (adding a live id again replaces it: replays are idempotent)."""
        ids = np.asarray(template_ids, dtype=np.int64)
        array = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self._dimension)
        if not len(ids) == len(subject_ids) == len(array):
            raise ValueError("template ids, subject ids and vectors differ in length")
        for subject_id in set(subject_ids):
            _check_subject(subject_id)
        for start in range(0, len(ids), INSERT_BATCH):
            rows = [
                {"template_id": int(t), "subject_id": s, "vector": v}
                for t, s, v in zip(
                    ids[start : start + INSERT_BATCH].tolist(),
                    subject_ids[start : start + INSERT_BATCH],
                    array[start : start + INSERT_BATCH],
                    strict=True,
                )
            ]
            self._client.upsert(self._name, rows)
        self._forget_count()

    def remove_subject(self, subject_id: str) -> int:
        return self.remove_templates(self.template_ids(subject_id))

    def remove_templates(self, template_ids: IdArray | Iterable[int]) -> int:
        ids = [int(t) for t in np.asarray(list(template_ids), dtype=np.int64).ravel()]
        if not ids:
            return 0
        present = self._client.query(self._name, ids=ids, output_fields=["template_id"])
        if present:
            self._client.delete(self._name, ids=[int(row["template_id"]) for row in present])
        self._forget_count()
        return len(present)

    def search(self, vector: AnyFloatArray, k: int) -> list[Hit]:
        query = check_query(vector, self._dimension)
        return widening_search(lambda fetch: self._search_templates(query, fetch), k)

    def persisted_sequence(self) -> int | None:
        properties = self._client.describe_collection(self._name).get("properties") or {}
        value = properties.get(SEQUENCE_PROPERTY)
        return None if value is None else int(value)

    def mark_sequence(self, sequence: int) -> None:
        if self.persisted_sequence() != sequence:
            self._client.alter_collection_properties(
                self._name, properties={SEQUENCE_PROPERTY: str(sequence)}
            )

    def clear(self) -> None:
        self._client.drop_collection(self._name)
        self._create()
        self._forget_count()

    def _search_templates(self, query: FloatArray, fetch: int) -> tuple[list[Hit], bool]:
        limit = min(fetch, MAX_LIMIT)
        results = self._client.search(
            self._name,
            data=[query[0]],
            limit=limit,
            output_fields=["subject_id"],
            search_params={"metric_type": "IP", "params": self._search_params},
            consistency_level="Strong",
        )
        hits = [
            Hit(str(row["entity"]["subject_id"]), int(row["template_id"]), float(row["distance"]))
            for row in results[0]
        ]
        return hits, len(hits) < limit or limit == MAX_LIMIT

    def _create(self) -> None:
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("template_id", DataType.INT64, is_primary=True)
        schema.add_field("subject_id", DataType.VARCHAR, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self._dimension)
        index = self._client.prepare_index_params()
        index.add_index(
            field_name="vector",
            index_type=self._index_type,
            metric_type="IP",
            params=self._index_params,
        )
        index.add_index(field_name="subject_id", index_type="INVERTED")
        self._client.create_collection(
            self._name, schema=schema, index_params=index, consistency_level="Strong"
        )

    def _forget_count(self) -> None:
        with self._lock:
            self._counted = None


def _check_subject(subject_id: str) -> str:
    if not _SUBJECT_ID.match(subject_id):
        raise ValueError(f"subject id {subject_id!r} is not a plain identifier")
    return subject_id


def _subject_filter(subject_id: str) -> str:
    return f'subject_id == "{_check_subject(subject_id)}"'
