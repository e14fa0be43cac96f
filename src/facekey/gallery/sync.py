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

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol, get_args, runtime_checkable

import numpy as np

from facekey.gallery.backend import GalleryBackend
from facekey.gallery.frozen import FrozenGallery
from facekey.gallery.index import GROWTH, AnyFloatArray, FloatArray, Hit
from facekey.gallery.layered import LayeredGallery, capture_of, merge
from facekey.gallery.snapshot import SnapshotInfo, SnapshotRefused, SnapshotStore

log = logging.getLogger(__name__)

ChangeKind = Literal["add", "remove_subject", "remove_template"]
Accept = Callable[[list[Hit]], list[Hit]]
"""The caller's database re-check: returns the hits it accepts (a subset of its argument)."""

RELOAD_GAP: Final = 100_000
"""Sequence distance beyond which a full reload is cheaper than replaying changes."""
ACCEPT_OVERFETCH: Final = 2
"""Subjects asked of the index per wanted result, before any is rejected by ``accept``."""
ADOPT_INTERVAL_S: Final = 10.0
"""How often (seconds) a gallery looks for a snapshot newer than its base."""


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


@runtime_checkable
class PersistentBackend(GalleryBackend, Protocol):
    """A backend that keeps its vectors across restarts (and may be shared by machines)."""

    def persisted_sequence(self) -> int | None:
        """The change-log sequence the stored vectors reflect (None: never filled)."""
        ...

    def mark_sequence(self, sequence: int) -> None:
        """Record that the stored vectors now reflect ``sequence``."""
        ...

    def clear(self) -> None:
        """Remove every vector (before a rebuild)."""
        ...


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
    """The index of one (network, engine), refreshed from its source before every search.

    With a :class:`~facekey.gallery.snapshot.SnapshotStore`, the index starts from the newest
    usable snapshot plus the changes logged since its sequence (a rebuild only when there is none,
    and then the rebuild is written as the first snapshot); without one, from every template.
    """

    def __init__(
        self,
        source: GallerySource,
        *,
        network_id: str,
        engine_key: str,
        new_index: Callable[[], GalleryBackend],
        reload_gap: int = RELOAD_GAP,
        snapshots: SnapshotStore | None = None,
        snapshot_min_templates: int = 0,
    ) -> None:
        self._source = source
        self._network_id = network_id
        self._engine_key = engine_key
        self._new_index = new_index
        self._reload_gap = reload_gap
        self._snapshots = snapshots
        self._min_templates = snapshot_min_templates
        self._lock = threading.RLock()
        self._index: GalleryBackend | None = None
        self._sequence = 0
        self._base_sequence: int | None = None
        self._next_adopt_check = 0.0
        self._written: SnapshotInfo | None = None

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
    def index(self) -> GalleryBackend:
        """The current index, refreshed from the source first."""
        with self._lock:
            self.refresh()
            assert self._index is not None
            return self._index

    @property
    def base_sequence(self) -> int | None:
        """The sequence of the snapshot the index started from (None: built from the source)."""
        with self._lock:
            return self._base_sequence

    def reload(self) -> None:
        """Replace the index: from the newest snapshot and the log, else from every template."""
        with self._lock:
            store = self._snapshots
            if store is None:
                self._rebuild()
                return
            with store.exclusive(
                network_id=self._network_id, engine_key=self._engine_key, purpose="build"
            ):
                if not self._restore(store):
                    self._rebuild()

    def write_snapshot(self, *, min_changes: int = 1) -> SnapshotInfo | None:
        """Fold the changes since the base into a new sealed snapshot, then start from it.

        Returns None when there is no store, another process is writing one for this gallery,
        or fewer than ``min_changes`` changes happened since the newest snapshot.
        """
        store = self._snapshots
        if store is None:
            return None
        with store.exclusive(
            network_id=self._network_id,
            engine_key=self._engine_key,
            purpose="write",
            wait=False,
        ) as taken:
            if not taken:
                return None
            with self._lock:
                self._written = None
                self.refresh()
                if self._written is not None:  # the refresh rebuilt and wrote one just now
                    return self._written
                index, sequence = self._index, self._sequence
                newest = store.newest_sequence(**self._key())
                if newest is not None and sequence - newest < min_changes:
                    return None
                capture = capture_of(index)
            if capture is None:
                return None
            frozen = merge(capture, store.spec, self._dimension())
            info = store.write(frozen, **self._key(), sequence=sequence)
        with self._lock:
            self._adopt(store, info.path)
        return info

    def refresh(self) -> None:
        """Apply the source's changes since the last applied sequence (or reload fully)."""
        with self._lock:
            if self._index is None:
                self.reload()
                return
            self._adopt_newer()
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
            self._apply(self._index, changes, after=self._sequence)
            self._sequence = max([current, *(c.sequence for c in changes)])
            _mark(self._index, self._sequence)

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

    def _dimension(self) -> int:
        if self._index is not None:
            return self._index.dimension
        return self._new_index().dimension

    def _rebuild(self) -> None:
        """Every live template from the source; written as the first snapshot when it is big.

        A backend that persists itself (Milvus) is first asked which sequence it reflects: it
        then only replays the log from there.
        """
        index = self._new_index()
        if isinstance(index, PersistentBackend):
            after = index.persisted_sequence()
            if after is not None and self._catch_up(index, after, f"collection at {after}"):
                return
            index.clear()
        sequence, entries = self._source.load_all(**self._key())
        store = self._snapshots
        if store is None or len(entries) < max(self._min_templates, 1):
            _add_entries(index, entries)
            self._index, self._sequence, self._base_sequence = index, sequence, None
            _mark(index, sequence)
            return
        ids = np.array([e.template_id for e in entries], dtype=np.int64)
        vectors = np.stack([np.asarray(e.vector) for e in entries])
        owners = [e.subject_id for e in entries]
        del entries
        frozen = FrozenGallery.build(ids, owners, vectors, store.spec, dimension=self._dimension())
        info = self._written = store.write(frozen, **self._key(), sequence=sequence)
        self._index, self._sequence = LayeredGallery(self._dimension(), frozen), sequence
        self._base_sequence = sequence
        if store.shares:  # map the machine's copy instead of keeping this private one
            self._adopt(store, info.path)

    def _restore(self, store: SnapshotStore) -> bool:
        restored = store.restore(**self._key())
        if restored is None:
            return False
        return self._start_from(*restored)

    def _adopt(self, store: SnapshotStore, path: Path) -> None:
        """Start from a given snapshot file (the working index stays if it cannot be used)."""
        try:
            info, frozen = store.open(path, **self._key())
        except (SnapshotRefused, OSError, RuntimeError) as exc:
            log.warning("snapshot %s not adopted: %s", path.name, exc)
            return
        self._start_from(info, frozen)

    def _adopt_newer(self) -> None:
        """Every few seconds: move to a snapshot newer than the base (written by another
        process), so the private delta layer stays small."""
        store, now = self._snapshots, time.monotonic()
        if store is None or now < self._next_adopt_check:
            return
        self._next_adopt_check = now + ADOPT_INTERVAL_S
        newest = store.newest_sequence(**self._key())
        if newest is not None and (self._base_sequence is None or newest > self._base_sequence):
            self._adopt(store, store.snapshots(**self._key())[0])

    def _start_from(self, info: SnapshotInfo, frozen: FrozenGallery) -> bool:
        """Base = the snapshot, then the log after its sequence; False if impossible."""
        index = LayeredGallery(self._dimension(), frozen)
        if not self._catch_up(index, info.sequence, f"snapshot {info.path.name}"):
            return False
        self._base_sequence = info.sequence
        return True

    def _catch_up(self, index: GalleryBackend, after: int, what: str) -> bool:
        """Make ``index`` (reflecting sequence ``after``) current and install it; False when
        the log cannot bring it up to date (then the caller rebuilds)."""
        current = self._source.current_sequence(**self._key())
        if after > current:
            log.warning("%s is ahead of the database (%d > %d): not used", what, after, current)
            return False
        try:
            changes = self._source.changes_since(**self._key(), sequence=after)
        except ChangeLogTruncated:
            log.warning("change log pruned after %s: rebuilding", what)
            return False
        self._apply(index, changes, after=after)
        self._index = index
        self._sequence = max([after, *(c.sequence for c in changes)])
        _mark(index, self._sequence)
        return True

    def _apply(self, index: GalleryBackend, changes: list[Change], *, after: int) -> None:
        adds: list[Change] = []
        for change in sorted(changes, key=lambda c: c.sequence):
            if change.sequence <= after:
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

    ``new_index(network_id, engine_key)`` returns the backend of that gallery (empty, or for a
    persistent backend whatever it holds) of that engine's dimension; ``snapshots``
    (optional) is where galleries start from and are saved to.
    """

    def __init__(
        self,
        source: GallerySource,
        new_index: Callable[[str, str], GalleryBackend],
        *,
        reload_gap: int = RELOAD_GAP,
        snapshots: SnapshotStore | None = None,
        snapshot_min_templates: int = 0,
    ) -> None:
        self._source = source
        self._new_index = new_index
        self._reload_gap = reload_gap
        self._snapshots = snapshots
        self._min_templates = snapshot_min_templates
        self._lock = threading.Lock()
        self._galleries: dict[tuple[str, str], SyncedGallery] = {}

    @property
    def snapshots(self) -> SnapshotStore | None:
        """Where galleries start from and are saved to (None: rebuilt from the source)."""
        return self._snapshots

    def get(self, network_id: str, engine_key: str) -> SyncedGallery:
        """The gallery of a network and engine (loaded from the source on first search)."""
        with self._lock:
            gallery = self._galleries.get((network_id, engine_key))
            if gallery is None:
                gallery = SyncedGallery(
                    self._source,
                    network_id=network_id,
                    engine_key=engine_key,
                    new_index=lambda: self._new_index(network_id, engine_key),
                    reload_gap=self._reload_gap,
                    snapshots=self._snapshots,
                    snapshot_min_templates=self._min_templates,
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


def _mark(index: GalleryBackend, sequence: int) -> None:
    if isinstance(index, PersistentBackend):
        index.mark_sequence(sequence)


def _add_entries(index: GalleryBackend, entries: list[Entry]) -> None:
    if entries:
        index.add(
            np.array([e.template_id for e in entries], dtype=np.int64),
            [e.subject_id for e in entries],
            np.stack([np.asarray(e.vector) for e in entries]),
        )


def _add(index: GalleryBackend, changes: list[Change]) -> None:
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
