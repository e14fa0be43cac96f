"""SyncedGallery and GalleryRegistry against an in-memory change log."""

from __future__ import annotations

import threading
from functools import partial

import numpy as np
import numpy.typing as npt
import pytest

from facekey.gallery.index import GalleryIndex, Hit
from facekey.gallery.sync import (
    Change,
    ChangeLogTruncated,
    Entry,
    GalleryRegistry,
    GallerySource,
    SyncedGallery,
)

DIM = 8
NET, ENGINE = "net-1", "fake@1"
FloatArray = npt.NDArray[np.float32]


class InMemorySource:
    """A database stand-in: a change log per (network, engine), a global sequence."""

    def __init__(self) -> None:
        self.log: dict[tuple[str, str], list[Change]] = {}
        self.sequence = 0
        self.pruned_before = 0
        self.loads = 0
        self.lock = threading.Lock()

    def _append(self, network_id: str, engine_key: str, **fields: object) -> None:
        with self.lock:
            self.sequence += 1
            change = Change(sequence=self.sequence, **fields)  # type: ignore[arg-type]
            self.log.setdefault((network_id, engine_key), []).append(change)

    def enrol(self, subject: str, template_id: int, vector: FloatArray, network: str = NET) -> None:
        self._append(
            network,
            ENGINE,
            kind="add",
            subject_id=subject,
            template_id=template_id,
            vector=vector,
        )

    def erase(self, subject: str, network: str = NET) -> None:
        self._append(network, ENGINE, kind="remove_subject", subject_id=subject)

    def drop_template(self, subject: str, template_id: int) -> None:
        self._append(
            NET, ENGINE, kind="remove_template", subject_id=subject, template_id=template_id
        )

    def current_sequence(self, *, network_id: str, engine_key: str) -> int:
        log = self.log.get((network_id, engine_key), [])
        return log[-1].sequence if log else 0

    def changes_since(self, *, network_id: str, engine_key: str, sequence: int) -> list[Change]:
        if sequence < self.pruned_before:
            raise ChangeLogTruncated(f"changes before {self.pruned_before} were pruned")
        return [c for c in self.log.get((network_id, engine_key), []) if c.sequence > sequence]

    def load_all(self, *, network_id: str, engine_key: str) -> tuple[int, list[Entry]]:
        self.loads += 1
        live: dict[int, Entry] = {}
        for c in self.log.get((network_id, engine_key), []):
            if c.kind == "add":
                assert c.template_id is not None and c.vector is not None
                live[c.template_id] = Entry(c.template_id, c.subject_id, c.vector)
            elif c.kind == "remove_subject":
                live = {t: e for t, e in live.items() if e.subject_id != c.subject_id}
            else:
                live.pop(c.template_id or -1, None)
        return self.current_sequence(network_id=network_id, engine_key=engine_key), list(
            live.values()
        )


def unit(rng: np.random.Generator, n: int) -> FloatArray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def accept_all(hits: list[Hit]) -> list[Hit]:
    return hits


def populated(n: int = 60, per_subject: int = 2) -> tuple[InMemorySource, FloatArray]:
    source = InMemorySource()
    vectors = unit(np.random.default_rng(0), n)
    for i, vector in enumerate(vectors):
        source.enrol(f"s{i // per_subject}", i, vector)
    return source, vectors


def gallery(source: GallerySource, threshold: int = 100_000, **options: int) -> SyncedGallery:
    return SyncedGallery(
        source,
        network_id=NET,
        engine_key=ENGINE,
        new_index=partial(GalleryIndex, DIM, hnsw_threshold=threshold),
        **options,
    )


def test_first_search_loads_everything() -> None:
    source, vectors = populated()
    g = gallery(source)
    assert g.sequence == 0
    hits = g.search(vectors[10], 3, accept=accept_all)
    assert hits[0].subject_id == "s5"
    assert len(hits) == 3
    assert g.sequence == 60
    assert len(g.index) == 60
    assert source.loads == 1


def test_refresh_applies_adds_and_removes_in_order() -> None:
    source, _ = populated()
    g = gallery(source)
    g.refresh()
    extra = unit(np.random.default_rng(9), 2)
    source.enrol("new", 100, extra[0])
    source.erase("s3")
    source.drop_template("s4", 8)
    source.enrol("s3", 101, extra[1])  # re-enrolled after erasure
    assert g.search(extra[0], 1, accept=accept_all)[0] == Hit("new", 100, pytest.approx(1.0))
    assert g.index.template_ids("s3") == [101]
    assert g.index.template_ids("s4") == [9]
    assert g.sequence == 64
    assert source.loads == 1


@pytest.mark.parametrize("threshold", [100_000, 20])
def test_erasure_seen_by_every_gallery_on_the_source(threshold: int) -> None:
    source, vectors = populated()
    first, second = gallery(source, threshold), gallery(source, threshold)
    for g in (first, second):
        assert g.search(vectors[20], 1, accept=accept_all)[0].subject_id == "s10"
    assert first.index.mode == ("hnsw" if threshold == 20 else "flat")
    source.erase("s10")
    for g in (first, second):
        for probe in (vectors[20], vectors[21]):
            hits = g.search(probe, 50, accept=accept_all)
            assert "s10" not in {h.subject_id for h in hits}
            assert len(hits) == 29


def test_accept_filters_with_overfetch() -> None:
    source, vectors = populated(n=200, per_subject=1)
    g = gallery(source)
    seen: list[list[Hit]] = []

    def accept_odd(hits: list[Hit]) -> list[Hit]:
        seen.append(hits)
        return [h for h in hits if int(h.subject_id[1:]) % 2 == 1]

    hits = g.search(vectors[0], 10, accept=accept_odd)
    assert len(hits) == 10
    assert all(int(h.subject_id[1:]) % 2 == 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    offered = [h.subject_id for batch in seen for h in batch]
    assert len(offered) == len(set(offered))  # each subject checked once
    exact = np.argsort(-(vectors @ vectors[0]))
    assert [h.template_id for h in hits] == [int(i) for i in exact if i % 2 == 1][:10]


def test_accept_rejecting_everything_returns_empty() -> None:
    source, vectors = populated(n=40, per_subject=1)
    calls: list[int] = []

    def reject(hits: list[Hit]) -> list[Hit]:
        calls.append(len(hits))
        return []

    assert gallery(source).search(vectors[0], 3, accept=reject) == []
    assert sum(calls) == 40


def test_accept_cannot_inject_hits() -> None:
    source, vectors = populated(n=10, per_subject=1)

    def inject(hits: list[Hit]) -> list[Hit]:
        return [*hits, Hit("intruder", 999, 2.0)]

    hits = gallery(source).search(vectors[0], 3, accept=inject)
    assert "intruder" not in {h.subject_id for h in hits}


def test_truncated_log_triggers_reload() -> None:
    source, vectors = populated()
    g = gallery(source)
    g.refresh()
    source.erase("s1")
    source.pruned_before = source.sequence
    assert "s1" not in {h.subject_id for h in g.search(vectors[2], 30, accept=accept_all)}
    assert source.loads == 2


def test_large_gap_and_backwards_sequence_reload() -> None:
    source, _ = populated()
    g = gallery(source, reload_gap=5)
    g.refresh()
    for i in range(6):
        source.erase(f"s{i}")
    g.refresh()
    assert source.loads == 2
    assert g.index.subjects == 24
    source.log[NET, ENGINE] = source.log[NET, ENGINE][:10]  # database restored from a backup
    g.refresh()
    assert source.loads == 3
    assert len(g.index) == 10


def test_other_networks_do_not_leak() -> None:
    source, vectors = populated()
    source.enrol("elsewhere", 500, vectors[0], network="net-2")
    hits = gallery(source).search(vectors[0], 60, accept=accept_all)
    assert "elsewhere" not in {h.subject_id for h in hits}


def test_change_validation() -> None:
    with pytest.raises(ValueError, match="template_id"):
        Change(1, "remove_template", "s")
    with pytest.raises(ValueError, match="vector"):
        Change(1, "add", "s", 3)
    with pytest.raises(ValueError, match="kind"):
        Change(1, "update", "s", 3)  # type: ignore[arg-type]


def test_registry_builds_lazily_once_per_key() -> None:
    source, vectors = populated()
    source.enrol("other-net", 900, vectors[0], network="net-2")
    registry = GalleryRegistry(source, lambda network_id, engine_key: GalleryIndex(DIM))
    got: list[SyncedGallery] = []
    threads = [
        threading.Thread(target=lambda: got.append(registry.get(NET, ENGINE))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(g) for g in got}) == 1
    assert len(registry) == 1
    assert source.loads == 0
    hits = registry.search("net-2", ENGINE, vectors[0], 5, accept=accept_all)
    assert [h.subject_id for h in hits] == ["other-net"]
    assert len(registry) == 2
    source.erase("s0")
    top = registry.search(NET, ENGINE, vectors[0], 1, accept=accept_all)
    assert top[0].subject_id != "s0"
    registry.discard(NET, ENGINE)
    assert len(registry) == 1
    assert registry.get(NET, ENGINE) is not got[0]


def test_concurrent_searches_during_erasures() -> None:
    source, vectors = populated(n=200, per_subject=2)
    g = gallery(source, threshold=50)
    g.refresh()
    erased: set[str] = set()
    violations: list[str] = []
    lock = threading.Lock()

    def searcher() -> None:
        for v in vectors:
            with lock:
                before = set(erased)
            hits = g.search(v, 10, accept=accept_all)
            violations.extend(h.subject_id for h in hits if h.subject_id in before)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(0, 100, 2):
        source.erase(f"s{i}")
        with lock:
            erased.add(f"s{i}")
    for thread in threads:
        thread.join()
    assert violations == []
