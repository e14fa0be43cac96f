"""A read-only gallery index: what a snapshot holds and what every worker of a machine maps.

A :class:`FrozenGallery` is a FAISS index whose labels are positions ``0..n-1`` plus, per
position, the template id and the subject id; two permutations sort them, so a template or a
subject is found by binary search without any per-process dictionary. Every part is a flat
array, so the whole gallery can live in files that several processes memory-map (one copy per
machine, see :mod:`facekey.gallery.snapshot`). Removals are recorded as ``removed`` positions
and filtered out of every result.

Below ``BaseSpec.hnsw_threshold`` templates the index is exact (``IndexFlatIP``); at or above it,
HNSW (``IndexHNSWFlat``). Building HNSW is the slow step (minutes at 1M); it happens once, in
the process that writes a snapshot, never in every worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import faiss
import numpy as np
import numpy.typing as npt

from facekey.gallery.index import FloatArray, IdArray

SubjectArray = npt.NDArray[np.bytes_]
PARTS: Final = (
    "template_ids",
    "subject_ids",
    "by_template",
    "by_subject",
    "sorted_template_ids",
    "sorted_subject_ids",
    "removed",
)
"""The array parts of a frozen gallery, besides its FAISS index."""


@dataclass(frozen=True)
class BaseSpec:
    """How frozen indexes are built and searched."""

    hnsw_threshold: int = 50_000
    hnsw_m: int = 48
    ef_construction: int = 200
    ef_search: int = 256

    def new_index(self, dimension: int, count: int) -> Any:
        """An empty FAISS index (positional labels) for ``count`` vectors."""
        if count < self.hnsw_threshold:
            return faiss.IndexFlatIP(dimension)
        index = faiss.IndexHNSWFlat(dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        return index

    def tune(self, index: Any) -> Any:
        """Apply the search-time parameters to an index read back from a file."""
        hnsw = getattr(index, "hnsw", None)
        if hnsw is not None:
            hnsw.efSearch = self.ef_search
        return index


@dataclass(frozen=True)
class FrozenGallery:
    """A FAISS index over positions with the template and subject id of every position."""

    index: Any = field(repr=False)
    template_ids: IdArray = field(repr=False)
    subject_ids: SubjectArray = field(repr=False)
    by_template: IdArray = field(repr=False)
    by_subject: IdArray = field(repr=False)
    sorted_template_ids: IdArray = field(repr=False)
    sorted_subject_ids: SubjectArray = field(repr=False)
    removed: IdArray = field(repr=False)

    @classmethod
    def build(
        cls,
        template_ids: IdArray,
        subject_ids: Iterable[str],
        vectors: FloatArray,
        spec: BaseSpec,
        *,
        dimension: int | None = None,
    ) -> FrozenGallery:
        """Index live templates (the slow step at scale: HNSW construction)."""
        dimension = dimension or vectors.shape[1]
        index = spec.new_index(dimension, len(template_ids))
        if len(template_ids):
            with _all_cores():  # the slow step; nothing else is served meanwhile
                index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls.assemble(index, template_ids, _encode(subject_ids), np.empty(0, np.int64))

    @classmethod
    def assemble(
        cls, index: Any, template_ids: IdArray, subject_ids: SubjectArray, removed: IdArray
    ) -> FrozenGallery:
        """Wrap an index and its id arrays, computing the sorted lookups (kept as arrays, so
        they are mapped like the rest instead of being rebuilt in every worker)."""
        ids = np.asarray(template_ids, dtype=np.int64)
        by_template = np.argsort(ids, kind="stable").astype(np.int64)
        by_subject = np.argsort(subject_ids, kind="stable").astype(np.int64)
        return cls(
            index,
            ids,
            subject_ids,
            by_template,
            by_subject,
            ids[by_template],
            subject_ids[by_subject],
            np.unique(np.asarray(removed, dtype=np.int64)),
        )

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    @property
    def stored(self) -> int:
        """Positions stored, removed ones included."""
        return len(self.template_ids)

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The array parts by name (see :data:`PARTS`)."""
        return {name: getattr(self, name) for name in PARTS}

    def positions_of_templates(self, template_ids: Iterable[int]) -> IdArray:
        """Positions of the given template ids (every copy, removed ones included)."""
        wanted = np.fromiter(template_ids, np.int64)
        if not len(wanted) or not self.stored:
            return np.empty(0, np.int64)
        low = np.searchsorted(self.sorted_template_ids, wanted, "left")
        high = np.searchsorted(self.sorted_template_ids, wanted, "right")
        found = [self.by_template[a:b] for a, b in zip(low, high, strict=True) if b > a]
        return np.concatenate(found).astype(np.int64) if found else np.empty(0, np.int64)

    def positions_of_subject(self, subject_id: str) -> IdArray:
        """Stored positions of one subject's templates (removed ones included)."""
        encoded = subject_id.encode()
        if not self.stored or len(encoded) > self.subject_ids.dtype.itemsize:
            return np.empty(0, np.int64)  # a longer id than every stored one is not stored
        key = np.array(encoded, dtype=self.subject_ids.dtype)
        low = int(np.searchsorted(self.sorted_subject_ids, key, "left"))
        high = int(np.searchsorted(self.sorted_subject_ids, key, "right"))
        return np.asarray(self.by_subject[low:high], dtype=np.int64)

    def subject_at(self, position: int) -> str:
        return bytes(self.subject_ids[position]).decode()

    def search(self, query: FloatArray, fetch: int) -> tuple[list[float], list[int]]:
        """Scores and positions of the ``fetch`` nearest stored vectors (removed included)."""
        fetch = min(fetch, self.stored)
        if fetch < 1:
            return [], []
        scores, labels = self.index.search(query, fetch)
        return scores[0].tolist(), labels[0].tolist()

    def vectors(self, positions: IdArray) -> FloatArray:
        """The stored vectors at ``positions``."""
        if not len(positions):
            return np.empty((0, self.dimension), dtype=np.float32)
        return np.asarray(self.index.reconstruct_batch(positions), dtype=np.float32)

    def live_positions(self) -> IdArray:
        keep = np.ones(self.stored, dtype=bool)
        keep[self.removed] = False
        return np.flatnonzero(keep).astype(np.int64)


@contextmanager
def _all_cores() -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _encode(subject_ids: Iterable[str]) -> SubjectArray:
    encoded = [s.encode() for s in subject_ids]
    width = max((len(s) for s in encoded), default=1)
    return np.array(encoded, dtype=f"S{max(width, 1)}")
