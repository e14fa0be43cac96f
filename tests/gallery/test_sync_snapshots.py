"""SyncedGallery starting from snapshots: replay, refusal, rebuild, adoption."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from snapshot_keys import Keys
from test_sync import DIM, ENGINE, NET, InMemorySource, accept_all, populated, unit

from facekey.gallery.frozen import BaseSpec
from facekey.gallery.index import GalleryIndex
from facekey.gallery.layered import LayeredGallery
from facekey.gallery.snapshot import SnapshotStore
from facekey.gallery.sync import SyncedGallery


def snapshots(tmp_path: Path, keys: Keys | None = None) -> SnapshotStore:
    (tmp_path / "shm").mkdir(exist_ok=True)
    return SnapshotStore(
        tmp_path / "snap",
        keys or Keys(),
        spec=BaseSpec(hnsw_threshold=40),
        share_dir=tmp_path / "shm",
    )


def worker(source: InMemorySource, store: SnapshotStore, minimum: int = 1) -> SyncedGallery:
    return SyncedGallery(
        source,
        network_id=NET,
        engine_key=ENGINE,
        new_index=partial(GalleryIndex, DIM),
        snapshots=store,
        snapshot_min_templates=minimum,
    )


def subjects_found(g: SyncedGallery, probe: np.ndarray) -> set[str]:
    return {h.subject_id for h in g.search(probe, 100, accept=accept_all)}


def test_first_start_builds_and_writes_the_snapshot_next_start_replays(tmp_path: Path) -> None:
    source, vectors = populated()
    store = snapshots(tmp_path)
    first = worker(source, store)
    first.refresh()
    assert source.loads == 1 and first.base_sequence == 60
    assert store.newest_sequence(network_id=NET, engine_key=ENGINE) == 60
    extra = unit(np.random.default_rng(5), 1)
    source.erase("s4")  # erased AFTER the snapshot was taken
    source.enrol("late", 500, extra[0])
    second = worker(source, store)
    for probe in (vectors[8], vectors[9]):
        assert "s4" not in subjects_found(second, probe)
    assert second.search(extra[0], 1, accept=accept_all)[0].subject_id == "late"
    assert source.loads == 1  # no second full load: snapshot + 2 changes
    assert second.base_sequence == 60 and second.sequence == 62


def test_small_galleries_are_not_snapshotted_on_load(tmp_path: Path) -> None:
    source, _ = populated()
    store = snapshots(tmp_path)
    worker(source, store, minimum=1000).refresh()
    assert store.newest_sequence(network_id=NET, engine_key=ENGINE) is None


def test_snapshot_of_another_generation_is_rebuilt(tmp_path: Path) -> None:
    source, vectors = populated()
    worker(source, snapshots(tmp_path)).refresh()
    renewed = worker(source, snapshots(tmp_path, Keys(generation=2)))
    assert renewed.search(vectors[0], 1, accept=accept_all)[0].subject_id == "s0"
    assert source.loads == 2


def test_snapshot_ahead_of_the_database_is_not_used(tmp_path: Path) -> None:
    source, _ = populated()
    worker(source, snapshots(tmp_path)).refresh()
    restored = InMemorySource()  # the database came back from an older backup: empty
    fresh = worker(restored, snapshots(tmp_path))
    assert len(fresh.index) == 0 and restored.loads == 1


def test_pruned_log_after_the_snapshot_rebuilds(tmp_path: Path) -> None:
    source, vectors = populated()
    worker(source, snapshots(tmp_path)).refresh()
    source.erase("s2")
    source.pruned_before = 61
    g = worker(source, snapshots(tmp_path))
    assert "s2" not in subjects_found(g, vectors[4])
    assert source.loads == 2


def test_write_snapshot_folds_changes_and_others_adopt_it(tmp_path: Path) -> None:
    source, vectors = populated()
    writer, reader = worker(source, snapshots(tmp_path)), worker(source, snapshots(tmp_path))
    reader.refresh()
    extra = unit(np.random.default_rng(6), 3)
    for i, vector in enumerate(extra):
        source.enrol(f"n{i}", 700 + i, vector)
    source.erase("s1")
    assert writer.write_snapshot(min_changes=10) is None  # 4 changes: not due
    info = writer.write_snapshot(min_changes=1)
    assert info is not None and info.sequence == 64 and info.templates == 61
    assert isinstance(writer.index, LayeredGallery) and writer.index.delta == 0
    reader._next_adopt_check = 0.0  # as if the adoption interval had passed
    reader.refresh()
    assert reader.base_sequence == 64
    assert "s1" not in subjects_found(reader, vectors[2])
    assert reader.search(extra[2], 1, accept=accept_all)[0].subject_id == "n2"


def test_write_snapshot_without_a_store_does_nothing() -> None:
    source, _ = populated()
    g = SyncedGallery(
        source, network_id=NET, engine_key=ENGINE, new_index=partial(GalleryIndex, DIM)
    )
    assert g.write_snapshot() is None


@pytest.mark.parametrize("removed", ["s0", "s29"])
def test_a_subject_erased_before_any_start_never_comes_back(tmp_path: Path, removed: str) -> None:
    source, vectors = populated()
    store = snapshots(tmp_path)
    worker(source, store).refresh()
    source.erase(removed)
    index = int(removed[1:]) * 2
    for _ in range(2):  # a new worker, twice (the second maps the machine's copy)
        assert removed not in subjects_found(worker(source, store), vectors[index])


def test_a_small_gallery_is_snapshotted_on_request(tmp_path: Path) -> None:
    source, vectors = populated()
    store = snapshots(tmp_path)
    g = worker(source, store, minimum=1000)  # too small to be snapshotted on load
    info = g.write_snapshot()
    assert info is not None and info.templates == 60
    assert g.base_sequence == 60 and isinstance(g.index, LayeredGallery)
    assert g.search(vectors[7], 1, accept=accept_all)[0].subject_id == "s3"
