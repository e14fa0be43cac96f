"""An in-memory 1:N search index of templates, keyed by template id, answering per subject.

Templates are unit-length float32 vectors, so cosine similarity is the inner product. Below
``hnsw_threshold`` live templates the index is exact (``faiss.IndexFlatIP``); at or above it, it
is rebuilt as ``faiss.IndexHNSWFlat`` (approximate, sub-millisecond at 100k). Both are wrapped
in ``faiss.IndexIDMap2`` so that FAISS labels are template ids.

HNSW in FAISS cannot delete: removed templates become tombstones that are filtered out of every
result, and the graph is rebuilt without them (:meth:`GalleryIndex.compact`) once they exceed
``COMPACT_RATIO`` of the stored vectors. A removed template or subject is never returned, in
either mode, from the moment the removing call returns.

The index is a cache of the database: :mod:`facekey.gallery.sync` keeps it up to date.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import faiss
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
AnyFloatArray = npt.NDArray[np.floating[Any]]
"""Inputs may be any floating dtype; they are converted to float32."""
IdArray = npt.NDArray[np.int64]
Mode = Literal["flat", "hnsw"]

OVERFETCH: Final = 5
"""Templates fetched per wanted subject (a subject has up to about 5 templates)."""
GROWTH: Final = 4
"""Factor by which a search widens when too few distinct subjects came back."""
COMPACT_RATIO: Final = 0.1
"""Fraction of tombstones among stored HNSW vectors above which the graph is rebuilt."""


def limit_faiss_threads(n: int = 1) -> None:
    """Set the number of OpenMP threads FAISS uses in this process.

    Call it once at worker start-up (not at import): threads slow down single queries (see
    MEASUREMENTS.md, IndexFlatIP at 1M: 25 ms on one thread, about 70 ms on two). It also
    applies to index building, so a batch job that builds large HNSW graphs may want more.
    """
    if n < 1:
        raise ValueError(f"thread count must be at least 1, got {n}")
    faiss.omp_set_num_threads(n)


@dataclass(frozen=True)
class Hit:
    """The best-scoring template of one subject for a query (score = cosine similarity)."""

    subject_id: str
    template_id: int
    score: float


class GalleryIndex:
    """Templates of many subjects, searched for the best-matching subjects of a probe.

    Thread-safe: every mutation and search holds one re-entrant lock.
    """

    def __init__(
        self,
        dimension: int,
        *,
        hnsw_threshold: int = 50_000,
        hnsw_m: int = 48,
        ef_construction: int = 200,
        ef_search: int = 256,
    ) -> None:
        for name, value in (
            ("dimension", dimension),
            ("hnsw_threshold", hnsw_threshold),
            ("hnsw_m", hnsw_m),
            ("ef_construction", ef_construction),
            ("ef_search", ef_search),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self._dimension = dimension
        self._hnsw_threshold = hnsw_threshold
        self._hnsw_m = hnsw_m
        self._ef_construction = ef_construction
        self._ef_search = ef_search
        self._lock = threading.RLock()
        self._subject_of: dict[int, str] = {}
        self._templates_of: dict[str, set[int]] = {}
        self._tombstones: set[int] = set()
        self._mode: Mode = "flat"
        self._index: Any = self._new_index("flat")

    @property
    def dimension(self) -> int:
        """Length of every template vector."""
        return self._dimension

    @property
    def mode(self) -> Mode:
        """``"flat"`` (exact) or ``"hnsw"`` (approximate)."""
        return self._mode

    @property
    def subjects(self) -> int:
        """Number of subjects with at least one live template."""
        with self._lock:
            return len(self._templates_of)

    @property
    def tombstones(self) -> int:
        """Removed templates still stored in the HNSW graph (always 0 in flat mode)."""
        with self._lock:
            return len(self._tombstones)

    def __len__(self) -> int:
        """Number of live templates."""
        with self._lock:
            return len(self._subject_of)

    def __contains__(self, template_id: object) -> bool:
        """Whether a template id is live in the index."""
        with self._lock:
            return template_id in self._subject_of

    def template_ids(self, subject_id: str) -> list[int]:
        """Live template ids of a subject, sorted (empty if unknown)."""
        with self._lock:
            return sorted(self._templates_of.get(subject_id, ()))

    def subject_of(self, template_id: int) -> str:
        """The owner of a live template (KeyError if it is not live)."""
        with self._lock:
            return self._subject_of[template_id]

    def live_ids(self) -> list[int]:
        """Every live template id, sorted."""
        with self._lock:
            return sorted(self._subject_of)

    def vectors(self, template_ids: IdArray) -> FloatArray:
        """The stored vectors of live templates, in the order given."""
        out = np.empty((len(template_ids), self._dimension), dtype=np.float32)
        with self._lock:
            for row, template_id in enumerate(template_ids.tolist()):
                if template_id not in self._subject_of:
                    raise KeyError(f"template {template_id} is not live")
                out[row] = self._index.reconstruct(template_id)
        return out

    def add(
        self,
        template_ids: IdArray | Sequence[int],
        subject_ids: Sequence[str],
        vectors: AnyFloatArray,
    ) -> None:
        """Add N templates: ids (int64, unique, not already live), owners and N×D vectors.

        Crossing ``hnsw_threshold`` rebuilds the index as HNSW (seconds at 50k on one thread).
        """
        ids = _check_ids(template_ids)
        subjects = _check_subjects(subject_ids, len(ids))
        array = _check_vectors(vectors, self._dimension)
        if len(array) != len(ids):
            raise ValueError(f"{len(ids)} template ids but {len(array)} vectors")
        with self._lock:
            self._check_new(ids)
            if self._tombstones.intersection(ids.tolist()):
                self._rebuild()  # a reused id must not be shadowed by its tombstone
            if len(ids):
                self._index.add_with_ids(array, ids)
            self._register(ids, subjects)
            if self._mode == "flat" and len(self._subject_of) >= self._hnsw_threshold:
                self._rebuild()

    def remove_subject(self, subject_id: str) -> int:
        """Remove every template of a subject; returns how many were removed."""
        with self._lock:
            return self.remove_templates(sorted(self._templates_of.get(subject_id, ())))

    def remove_templates(self, template_ids: IdArray | Iterable[int]) -> int:
        """Remove templates by id (unknown ids are ignored); returns how many were removed."""
        wanted = {int(t) for t in np.asarray(list(template_ids), dtype=np.int64).ravel()}
        with self._lock:
            present = sorted(t for t in wanted if t in self._subject_of)
            self._unregister(present)
            if present and self._mode == "flat":
                self._index.remove_ids(np.asarray(present, dtype=np.int64))
            elif present:
                self._tombstones.update(present)
                if len(self._tombstones) > COMPACT_RATIO * int(self._index.ntotal):
                    self._rebuild()
            return len(present)

    def compact(self) -> int:
        """Rebuild without tombstones, flat or HNSW by live size; returns tombstones purged."""
        with self._lock:
            purged = len(self._tombstones)
            self._rebuild()
            return purged

    def search(self, vector: AnyFloatArray, k: int) -> list[Hit]:
        """Up to ``k`` subjects, best first, each with its best-scoring template."""
        query = check_query(vector, self._dimension)
        with self._lock:
            return widening_search(lambda fetch: self._search_templates(query, fetch), k)

    def _search_templates(self, query: FloatArray, fetch: int) -> tuple[list[Hit], bool]:
        stored = int(self._index.ntotal)
        if stored == 0:
            return [], True
        fetch = min(fetch, stored)
        scores, labels = self._index.search(query, fetch)
        hits = [
            Hit(self._subject_of[label], label, float(score))
            for score, label in zip(scores[0].tolist(), labels[0].tolist(), strict=True)
            if label >= 0 and label not in self._tombstones
        ]
        return hits, fetch >= stored

    def _check_new(self, ids: IdArray) -> None:
        clash = [t for t in ids.tolist() if t in self._subject_of]
        if clash:
            raise ValueError(f"template ids already in the index: {clash[:10]}")

    def _register(self, ids: IdArray, subjects: Sequence[str]) -> None:
        for template_id, subject_id in zip(ids.tolist(), subjects, strict=True):
            self._subject_of[template_id] = subject_id
            self._templates_of.setdefault(subject_id, set()).add(template_id)

    def _unregister(self, ids: Iterable[int]) -> None:
        for template_id in ids:
            subject_id = self._subject_of.pop(template_id)
            templates = self._templates_of[subject_id]
            templates.discard(template_id)
            if not templates:
                del self._templates_of[subject_id]

    def _rebuild(self) -> None:
        ids, vectors = self._live_vectors()
        mode: Mode = "hnsw" if len(ids) >= self._hnsw_threshold else "flat"
        index = self._new_index(mode)
        if len(ids):
            index.add_with_ids(vectors, ids)
        self._index, self._mode = index, mode
        self._tombstones.clear()

    def _live_vectors(self) -> tuple[IdArray, FloatArray]:
        stored = int(self._index.ntotal)
        if stored == 0:
            return np.empty(0, np.int64), np.empty((0, self._dimension), np.float32)
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = np.asarray(self._index.index.reconstruct_n(0, stored), dtype=np.float32)
        keep = ~np.isin(ids, np.fromiter(self._tombstones, np.int64, len(self._tombstones)))
        return ids[keep], vectors[keep]

    def _new_index(self, mode: Mode) -> Any:
        if mode == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self._dimension))
        inner = faiss.IndexHNSWFlat(self._dimension, self._hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = self._ef_construction
        inner.hnsw.efSearch = self._ef_search
        return faiss.IndexIDMap2(inner)


def widening_search(fetch_templates: Callable[[int], tuple[list[Hit], bool]], k: int) -> list[Hit]:
    """The best ``k`` subjects from template searches that widen until enough subjects came
    back: ``fetch_templates(n)`` returns the best ``n`` templates' hits and whether that was
    every stored template."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    fetch = k * OVERFETCH
    while True:
        hits, exhausted = fetch_templates(fetch)
        best = best_per_subject(hits, k)
        if len(best) >= k or exhausted:
            return best
        fetch *= GROWTH


def best_per_subject(hits: Iterable[Hit], k: int) -> list[Hit]:
    """The ``k`` best subjects of ``hits``, each with its best hit, best first."""
    best: dict[str, Hit] = {}
    for hit in hits:
        kept = best.get(hit.subject_id)
        if kept is None or hit.score > kept.score:
            best[hit.subject_id] = hit
    return sorted(best.values(), key=lambda hit: (-hit.score, hit.template_id))[:k]


def _check_ids(template_ids: IdArray | Sequence[int]) -> IdArray:
    array = np.asarray(template_ids)
    if array.ndim != 1:
        raise ValueError(f"template ids must be one-dimensional, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"template ids must be integers, got {array.dtype}")
    ids = array.astype(np.int64)
    if ids.size and ids.min() < 0:
        raise ValueError("template ids must be non-negative")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("template ids must be unique within one call")
    return ids


def _check_subjects(subject_ids: Sequence[str], count: int) -> Sequence[str]:
    if isinstance(subject_ids, str):
        raise ValueError("subject ids must be a sequence of strings, not one string")
    if len(subject_ids) != count:
        raise ValueError(f"{count} template ids but {len(subject_ids)} subject ids")
    if not all(isinstance(s, str) and s for s in subject_ids):
        raise ValueError("every subject id must be a non-empty string")
    return subject_ids


def _check_vectors(vectors: AnyFloatArray, dimension: int) -> FloatArray:
    array = np.asarray(vectors)
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ValueError(f"vectors must have shape (N, {dimension}), got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"vectors must be floating point, got {array.dtype}")
    out = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ValueError("vectors must be finite (found NaN or infinity)")
    return out


def check_query(vector: AnyFloatArray, dimension: int) -> FloatArray:
    array = np.asarray(vector)
    if array.shape not in ((dimension,), (1, dimension)):
        raise ValueError(
            f"query must have shape ({dimension},) or (1, {dimension}), got {array.shape}"
        )
    return _check_vectors(array.reshape(1, dimension), dimension)
