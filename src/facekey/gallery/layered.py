"""A gallery in two layers: a read-only base from a snapshot, and the changes since.

The base (:class:`~facekey.gallery.frozen.FrozenGallery`) is opened from a sealed snapshot and,
on a server, memory-mapped from one decrypted copy per machine: every worker of the machine
searches the same physical pages. What happened after the snapshot lives in this process only:
new templates in a small mutable :class:`~facekey.gallery.index.GalleryIndex` (exact while it is
small) and removed base templates as a mask that filters every result. The next snapshot folds
both into a new base (:func:`merge`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import faiss
import numpy as np

from facekey.gallery.frozen import BaseSpec, FrozenGallery, SubjectArray
from facekey.gallery.index import (
    COMPACT_RATIO,
    AnyFloatArray,
    FloatArray,
    GalleryIndex,
    Hit,
    IdArray,
    check_query,
    widening_search,
)

DELTA_HNSW_THRESHOLD = 50_000
"""Templates added since the snapshot above which the delta layer switches to HNSW."""


@dataclass(frozen=True)
class Capture:
    """A consistent copy of a layered gallery's state, taken to write a snapshot from."""

    base: FrozenGallery | None
    dead: IdArray = field(repr=False)
    template_ids: IdArray = field(repr=False)
    subject_ids: list[str] = field(repr=False)
    vectors: FloatArray = field(repr=False)


class LayeredGallery:
    """A :class:`~facekey.gallery.backend.GalleryBackend`: frozen base + live delta."""

    def __init__(self, dimension: int, base: FrozenGallery | None = None) -> None:
        if base is not None and base.dimension != dimension:
            raise ValueError(f"base has dimension {base.dimension}, expected {dimension}")
        self._dimension = dimension
        self._base = base
        self._lock = threading.RLock()
        self._delta = GalleryIndex(dimension, hnsw_threshold=DELTA_HNSW_THRESHOLD)
        stored = base.stored if base is not None else 0
        self._dead = np.zeros(stored, dtype=bool)
        if base is not None:
            self._dead[base.removed] = True
        self._base_live = stored - int(self._dead.sum())
        self._subjects = _live_subjects(base, self._dead)

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def base(self) -> FrozenGallery | None:
        """The frozen layer (None before the first snapshot)."""
        return self._base

    @property
    def delta(self) -> int:
        """Templates added since the base was frozen."""
        return len(self._delta)

    @property
    def subjects(self) -> int:
        with self._lock:
            return self._subjects

    def __len__(self) -> int:
        with self._lock:
            return self._base_live + len(self._delta)

    def __contains__(self, template_id: object) -> bool:
        if not isinstance(template_id, int | np.integer):
            return False
        with self._lock:
            return template_id in self._delta or len(self._live_base([int(template_id)])) > 0

    def template_ids(self, subject_id: str) -> list[int]:
        with self._lock:
            base = self._live_subject_positions(subject_id)
            ids = self._base.template_ids[base].tolist() if self._base is not None else []
            return sorted([*ids, *self._delta.template_ids(subject_id)])

    def add(
        self,
        template_ids: IdArray | Sequence[int],
        subject_ids: Sequence[str],
        vectors: AnyFloatArray,
    ) -> None:
        ids = np.asarray(template_ids, dtype=np.int64)
        with self._lock:
            clash = self._live_base(ids.tolist())
            if len(clash):
                raise ValueError(f"template ids already in the index: {clash[:10].tolist()}")
            touched = set(subject_ids)
            before = {s: self._alive(s) for s in touched}
            self._delta.add(ids, subject_ids, vectors)
            self._recount(before)

    def remove_subject(self, subject_id: str) -> int:
        with self._lock:
            before = {subject_id: self._alive(subject_id)}
            removed = self._delta.remove_subject(subject_id)
            removed += self._kill(self._live_subject_positions(subject_id))
            self._recount(before)
            return removed

    def remove_templates(self, template_ids: IdArray | Iterable[int]) -> int:
        wanted = [int(t) for t in np.asarray(list(template_ids), dtype=np.int64).ravel()]
        with self._lock:
            positions = self._live_base(wanted)
            owners = {self._delta_owner(t) for t in wanted if t in self._delta}
            if self._base is not None:
                owners |= {self._base.subject_at(p) for p in positions.tolist()}
            before = {s: self._alive(s) for s in owners}
            removed = self._delta.remove_templates(wanted) + self._kill(positions)
            self._recount(before)
            return removed

    def search(self, vector: AnyFloatArray, k: int) -> list[Hit]:
        query = check_query(vector, self._dimension)
        with self._lock:
            recent = self._delta.search(query, k) if len(self._delta) else []
            return widening_search(lambda fetch: self._search_base(query, fetch, recent), k)

    def capture(self) -> Capture:
        """A consistent copy of the state (cheap: the base is shared, the delta is small)."""
        with self._lock:
            ids = np.array(self._delta.live_ids(), dtype=np.int64)
            owners = [self._delta_owner(int(t)) for t in ids.tolist()]
            vectors = self._delta.vectors(ids)
            return Capture(self._base, np.flatnonzero(self._dead), ids, owners, vectors)

    # ------------------------------------------------------------------ internals

    def _search_base(
        self, query: FloatArray, fetch: int, recent: list[Hit]
    ) -> tuple[list[Hit], bool]:
        base = self._base
        if base is None:
            return list(recent), True
        scores, positions = base.search(query, fetch)
        hits = [
            Hit(base.subject_at(p), int(base.template_ids[p]), s)
            for s, p in zip(scores, positions, strict=True)
            if p >= 0 and not self._dead[p]
        ]
        return hits + recent, fetch >= base.stored

    def _live_base(self, template_ids: Iterable[int]) -> IdArray:
        if self._base is None:
            return np.empty(0, np.int64)
        positions = self._base.positions_of_templates(template_ids)
        return positions[~self._dead[positions]]

    def _live_subject_positions(self, subject_id: str) -> IdArray:
        if self._base is None:
            return np.empty(0, np.int64)
        positions = self._base.positions_of_subject(subject_id)
        return positions[~self._dead[positions]]

    def _kill(self, positions: IdArray) -> int:
        self._dead[positions] = True
        self._base_live -= len(positions)
        return len(positions)

    def _alive(self, subject_id: str) -> bool:
        return bool(self._delta.template_ids(subject_id)) or bool(
            len(self._live_subject_positions(subject_id))
        )

    def _recount(self, before: dict[str, bool]) -> None:
        for subject_id, was in before.items():
            self._subjects += int(self._alive(subject_id)) - int(was)

    def _delta_owner(self, template_id: int) -> str:
        return self._delta.subject_of(template_id)


def capture_of(index: object) -> Capture | None:
    """The state of a FAISS gallery to write a snapshot from (None for other backends)."""
    if isinstance(index, LayeredGallery):
        return index.capture()
    if not isinstance(index, GalleryIndex):
        return None
    ids = np.array(index.live_ids(), dtype=np.int64)
    owners = [index.subject_of(int(t)) for t in ids.tolist()]
    return Capture(None, np.empty(0, np.int64), ids, owners, index.vectors(ids))


def merge(capture: Capture, spec: BaseSpec, dimension: int) -> FrozenGallery:
    """A new frozen base holding exactly the captured live templates.

    The graph is extended in place (new templates added to a private copy of the base) while
    the base is of the right kind and holds few removed templates; otherwise it is rebuilt.
    """
    base = capture.base
    live = (base.stored - len(capture.dead) if base is not None else 0) + len(capture.template_ids)
    if base is None or _needs_rebuild(base, capture, spec, live):
        ids, owners, vectors = _live_arrays(capture, dimension)
        return FrozenGallery.build(ids, owners, vectors, spec, dimension=dimension)
    index = spec.tune(faiss.deserialize_index(faiss.serialize_index(base.index)))  # owned copy
    if len(capture.template_ids):
        index.add(capture.vectors)
    added: SubjectArray = np.array([s.encode() for s in capture.subject_ids], dtype=np.bytes_)
    subjects = np.concatenate([base.subject_ids, added]) if len(added) else base.subject_ids
    return FrozenGallery.assemble(
        index,
        np.concatenate([base.template_ids, capture.template_ids]),
        subjects,
        capture.dead,
    )


def _needs_rebuild(base: FrozenGallery, capture: Capture, spec: BaseSpec, live: int) -> bool:
    wanted_kind = type(spec.new_index(base.dimension, live))
    return type(base.index) is not wanted_kind or len(capture.dead) > COMPACT_RATIO * base.stored


def _live_arrays(capture: Capture, dimension: int) -> tuple[IdArray, list[str], FloatArray]:
    base = capture.base
    if base is None:
        return capture.template_ids, list(capture.subject_ids), capture.vectors
    keep = np.ones(base.stored, dtype=bool)
    keep[capture.dead] = False
    positions = np.flatnonzero(keep).astype(np.int64)
    ids = np.concatenate([base.template_ids[positions], capture.template_ids])
    subjects = [bytes(s).decode() for s in base.subject_ids[positions]]
    vectors = np.concatenate([base.vectors(positions), capture.vectors.reshape(-1, dimension)])
    return ids, [*subjects, *capture.subject_ids], vectors


def _live_subjects(base: FrozenGallery | None, dead: np.ndarray) -> int:
    if base is None or not base.stored:
        return 0
    ordered = base.by_subject[~dead[base.by_subject]]
    if not len(ordered):
        return 0
    names = base.subject_ids[ordered]
    return int(1 + np.count_nonzero(names[1:] != names[:-1]))
