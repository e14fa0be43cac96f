"""Keeping gallery indexes consistent with the database through a change sequence.

The database is the truth; an index is a cache. For each (network, engine) the database keeps
a change log: every enrolment and erasure is written with a sequence number in the same
transaction. A :class:`SyncedGallery` loads every live template once, then before *every* search
reads the current sequence and applies the changes it has not seen yet, so an erasure committed
by any process is honoured by every process on its next search. Hits are finally handed to the
caller's ``accept`` callback, which re-checks them against the database (subject active, consent
for the purpose).

What a :class:`GallerySource` must guarantee (the database layer implements it):

* ``current_sequence`` returns a sequence ``s`` such that every change with a sequence <= ``s``
  is committed and visible to ``changes_since``. Sequences that become visible out of order
  (e.g. a bare PostgreSQL ``SEQUENCE`` shared by concurrent transactions) break this: use a
  per-(network, engine) counter row incremented in the writing transaction, or take a lock.
* ``changes_since(sequence=s)`` returns the changes with a sequence > ``s``, ascending; it raises
  :class:`ChangeLogTruncated` if some of them were pruned, which triggers a full reload.
* ``load_all`` returns, from one snapshot, every live template and the sequence it reflects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, get_args

import numpy as np

from facekey.gallery.index import GROWTH, AnyFloatArray, FloatArray, GalleryIndex, Hit

ChangeKind = Literal["add", "remove_subject", "remove_template"]
Accept = Callable[[list[Hit]], list[Hit]]
"""The caller's database re-check: returns the hits it accepts (a subset of its argument)."""

RELOAD_GAP: Final = 100_000
"""Sequence distance beyond which a full reload is cheaper than replaying changes."""
ACCEPT_OVERFETCH: Final = 2
"""Subjects asked of the index per wanted result, before any is rejected by ``accept``."""


class ChangeLogTruncated(Exception):
    """Raised by a source that no longer holds every change after the requested sequence."""


@dataclass(frozen=True)
class Entry:
    """One live template as loaded from the database."""

    template_id: int
    subject_id: str
    vector: FloatArray = field(compare=False, repr=False)


@dataclass(frozen=True)
class Change:
    """One committed change to a gallery, in sequence order.

    ``add`` needs ``template_id`` and ``vector``; ``remove_template`` needs ``template_id``;
    ``remove_subject`` removes every template of ``subject_id``.
    """

    sequence: int
    kind: ChangeKind
    subject_id: str
    template_id: int | None = None
    vector: FloatArray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in get_args(ChangeKind):
            raise ValueError(f"unknown change kind {self.kind!r}")
        if self.kind != "remove_subject" and self.template_id is None:
            raise ValueError(f"a {self.kind} change needs a template_id")
        if self.kind == "add" and self.vector is None:
            raise ValueError("an add change needs a vector")


class GallerySource(Protocol):
    """Where galleries come from: the database, seen through its change log."""

    def current_sequence(self, *, network_id: str, engine_key: str) -> int:
        """The latest committed sequence of this gallery (0 if it never changed)."""
        ...

    def changes_since(self, *, network_id: str, engine_key: str, sequence: int) -> list[Change]:
        """Changes with a sequence greater than ``sequence``, ascending."""
        ...

    def load_all(self, *, network_id: str, engine_key: str) -> tuple[int, list[Entry]]:
        """The sequence at load time and every live template, from one snapshot."""
        ...


class SyncedGallery:
    """The index of one (network, engine), refreshed from its source before every search."""

    def __init__(
        self,
        source: GallerySource,
        *,
        network_id: str,
        engine_key: str,
        new_index: Callable[[], GalleryIndex],
        reload_gap: int = RELOAD_GAP,
    ) -> None:
        self._source = source
        self._network_id = network_id
        self._engine_key = engine_key
        self._new_index = new_index
        self._reload_gap = reload_gap
        self._lock = threading.RLock()
        self._index: GalleryIndex | None = None
        self._sequence = 0

    @property
    def network_id(self) -> str:
        """The network whose templates this gallery holds."""
        return self._network_id

    @property
    def engine_key(self) -> str:
        """The engine (id and version) whose templates this gallery holds."""
        return self._engine_key

    @property
    def sequence(self) -> int:
        """The last source sequence applied (0 before the first load)."""
        with self._lock:
            return self._sequence

    @property
    def index(self) -> GalleryIndex:
        """The current index, refreshed from the source first."""
        with self._lock:
            self.refresh()
            assert self._index is not None
            return self._index

    def reload(self) -> None:
        """Replace the index with a fresh one built from every live template."""
        with self._lock:
            sequence, entries = self._source.load_all(**self._key())
            index = self._new_index()
            if entries:
                index.add(
                    np.array([e.template_id for e in entries], dtype=np.int64),
                    [e.subject_id for e in entries],
                    np.stack([np.asarray(e.vector) for e in entries]),
                )
            self._index, self._sequence = index, sequence

    def refresh(self) -> None:
        """Apply the source's changes since the last applied sequence (or reload fully)."""
        with self._lock:
            if self._index is None:
                self.reload()
                return
            current = self._source.current_sequence(**self._key())
            if current == self._sequence:
                return
            if not 0 < current - self._sequence <= self._reload_gap:
                self.reload()
                return
            try:
                changes = self._source.changes_since(**self._key(), sequence=self._sequence)
            except ChangeLogTruncated:
                self.reload()
                return
            self._apply(self._index, changes)
            self._sequence = max([current, *(c.sequence for c in changes)])

    def search(self, vector: AnyFloatArray, k: int, *, accept: Accept) -> list[Hit]:
        """Up to ``k`` subjects that ``accept`` keeps, best first, after a refresh.

        ``accept`` sees each candidate subject at most once; when it rejects some, the search
        widens until ``k`` are accepted or the gallery is exhausted.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        index = self.index
        judged: set[str] = set()
        accepted: list[Hit] = []
        want = k * ACCEPT_OVERFETCH
        while True:
            hits = index.search(vector, want)
            fresh = [hit for hit in hits if hit.subject_id not in judged]
            judged.update(hit.subject_id for hit in fresh)
            accepted.extend(_accepted(fresh, accept))
            if len(accepted) >= k or len(hits) < want:
                return sorted(accepted, key=lambda hit: -hit.score)[:k]
            want *= GROWTH

    def _key(self) -> dict[str, str]:
        return {"network_id": self._network_id, "engine_key": self._engine_key}

    def _apply(self, index: GalleryIndex, changes: list[Change]) -> None:
        adds: list[Change] = []
        for change in sorted(changes, key=lambda c: c.sequence):
            if change.sequence <= self._sequence:
                continue
            if change.kind == "add":
                adds.append(change)
                continue
            _add(index, adds)
            adds = []
            if change.kind == "remove_subject":
                index.remove_subject(change.subject_id)
            else:
                index.remove_templates([_template_id(change)])
        _add(index, adds)


class GalleryRegistry:
    """One :class:`SyncedGallery` per (network, engine), built lazily; thread-safe.

    ``new_index(engine_key)`` returns an empty :class:`GalleryIndex` of that engine's dimension.
    """

    def __init__(
        self,
        source: GallerySource,
        new_index: Callable[[str], GalleryIndex],
        *,
        reload_gap: int = RELOAD_GAP,
    ) -> None:
        self._source = source
        self._new_index = new_index
        self._reload_gap = reload_gap
        self._lock = threading.Lock()
        self._galleries: dict[tuple[str, str], SyncedGallery] = {}

    def get(self, network_id: str, engine_key: str) -> SyncedGallery:
        """The gallery of a network and engine (loaded from the source on first search)."""
        with self._lock:
            gallery = self._galleries.get((network_id, engine_key))
            if gallery is None:
                gallery = SyncedGallery(
                    self._source,
                    network_id=network_id,
                    engine_key=engine_key,
                    new_index=lambda: self._new_index(engine_key),
                    reload_gap=self._reload_gap,
                )
                self._galleries[network_id, engine_key] = gallery
            return gallery

    def search(
        self, network_id: str, engine_key: str, vector: AnyFloatArray, k: int, *, accept: Accept
    ) -> list[Hit]:
        """Shorthand for ``get(network_id, engine_key).search(vector, k, accept=accept)``."""
        return self.get(network_id, engine_key).search(vector, k, accept=accept)

    def discard(self, network_id: str, engine_key: str) -> None:
        """Forget a gallery (e.g. a retired engine); a later :meth:`get` rebuilds it."""
        with self._lock:
            self._galleries.pop((network_id, engine_key), None)

    def __len__(self) -> int:
        """Number of galleries built so far."""
        with self._lock:
            return len(self._galleries)


def _accepted(hits: list[Hit], accept: Accept) -> list[Hit]:
    if not hits:
        return []
    offered = set(hits)
    return [hit for hit in accept(list(hits)) if hit in offered]


def _add(index: GalleryIndex, changes: list[Change]) -> None:
    fresh = {_template_id(c): c for c in changes if _template_id(c) not in index}
    if not fresh:
        return
    vectors = [np.asarray(c.vector) for c in fresh.values()]
    index.add(
        np.fromiter(fresh, np.int64, len(fresh)),
        [c.subject_id for c in fresh.values()],
        np.stack(vectors),
    )


def _template_id(change: Change) -> int:
    if change.template_id is None:
        raise ValueError(f"a {change.kind} change needs a template_id")
    return change.template_id
