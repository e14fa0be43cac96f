"""Sealed snapshots: round trip, one mapped copy per machine, refusals, kill -9 while writing."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from snapshot_keys import Keys

from facekey.gallery.frozen import BaseSpec, FrozenGallery
from facekey.gallery.layered import LayeredGallery
from facekey.gallery.snapshot import SnapshotRefused, SnapshotStore

DIM = 16
NET, ENGINE = "net-1", "fake:1"
FloatArray = npt.NDArray[np.float32]
HERE = Path(__file__).parent


def gallery(n: int = 300, seed: int = 0) -> tuple[FrozenGallery, FloatArray]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    owners = [f"subject-{i}" for i in range(n)]
    spec = BaseSpec(hnsw_threshold=100)
    return FrozenGallery.build(np.arange(n, dtype=np.int64) * 3, owners, vectors, spec), vectors


def store(tmp_path: Path, *, share: bool = True, keys: Keys | None = None) -> SnapshotStore:
    return SnapshotStore(
        tmp_path / "snapshots",
        keys or Keys(),
        spec=BaseSpec(hnsw_threshold=100),
        share_dir=tmp_path / "shm" if share else None,
    )


def top(frozen: FrozenGallery, probe: FloatArray) -> list[str]:
    return [h.subject_id for h in LayeredGallery(DIM, frozen).search(probe, 5)]


@pytest.mark.parametrize("share", [True, False])
def test_round_trip(tmp_path: Path, share: bool) -> None:
    (tmp_path / "shm").mkdir()
    frozen, vectors = gallery()
    snapshots = store(tmp_path, share=share)
    info = snapshots.write(frozen, network_id=NET, engine_key=ENGINE, sequence=42)
    assert (info.sequence, info.templates, info.stored) == (42, 300, 300)
    restored = snapshots.restore(network_id=NET, engine_key=ENGINE)
    assert restored is not None
    assert restored[0] == info
    for probe in vectors[::37]:
        assert top(restored[1], probe) == top(frozen, probe)
    assert np.array_equal(restored[1].template_ids, frozen.template_ids)


def test_sealed_at_rest_and_private_when_shared(tmp_path: Path) -> None:
    (tmp_path / "shm").mkdir()
    frozen, vectors = gallery()
    snapshots = store(tmp_path)
    info = snapshots.write(frozen, network_id=NET, engine_key=ENGINE, sequence=1)
    sealed = info.path.read_bytes()
    assert vectors[5].astype("<f4").tobytes()[:32] not in sealed
    assert b"subject-5" not in sealed
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
    snapshots.restore(network_id=NET, engine_key=ENGINE)
    machine = tmp_path / "shm" / f"facekey-{os.getuid()}"
    assert stat.S_IMODE(machine.stat().st_mode) == 0o700
    copies = [p for p in machine.rglob("*.bin")]
    assert copies and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in copies)


def test_workers_map_one_copy(tmp_path: Path) -> None:
    (tmp_path / "shm").mkdir()
    frozen, _ = gallery()
    snapshots = store(tmp_path)
    snapshots.write(frozen, network_id=NET, engine_key=ENGINE, sequence=1)
    first = snapshots.restore(network_id=NET, engine_key=ENGINE)
    copies = sorted((tmp_path / "shm").rglob("index.bin"))
    second = store(tmp_path).restore(network_id=NET, engine_key=ENGINE)  # another process
    assert first is not None and second is not None
    assert sorted((tmp_path / "shm").rglob("index.bin")) == copies and len(copies) == 1
    assert isinstance(second[1].template_ids, np.memmap)


def test_another_generation_is_refused(tmp_path: Path) -> None:
    frozen, _ = gallery()
    store(tmp_path, share=False).write(frozen, network_id=NET, engine_key=ENGINE, sequence=1)
    renewed = store(tmp_path, share=False, keys=Keys(generation=2))
    path = renewed.snapshots(network_id=NET, engine_key=ENGINE)[0]
    with pytest.raises(SnapshotRefused, match="made for"):
        renewed.open(path, network_id=NET, engine_key=ENGINE)
    assert renewed.restore(network_id=NET, engine_key=ENGINE) is None


def test_another_gallerys_file_is_refused(tmp_path: Path) -> None:
    frozen, _ = gallery()
    snapshots = store(tmp_path, share=False)
    info = snapshots.write(frozen, network_id=NET, engine_key=ENGINE, sequence=1)
    with pytest.raises(SnapshotRefused):
        snapshots.open(info.path, network_id="net-2", engine_key=ENGINE)
    other_kek = store(tmp_path, share=False, keys=Keys(secret=b"\x02" * 32))
    with pytest.raises(SnapshotRefused, match="key does not open"):
        other_kek.open(info.path, network_id=NET, engine_key=ENGINE)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_altered_files_are_refused(tmp_path: Path, damage: str) -> None:
    frozen, _ = gallery()
    snapshots = store(tmp_path, share=False)
    info = snapshots.write(frozen, network_id=NET, engine_key=ENGINE, sequence=1)
    data = bytearray(info.path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x40
    else:
        del data[-100:]
    info.path.write_bytes(bytes(data))
    with pytest.raises(SnapshotRefused):
        snapshots.open(info.path, network_id=NET, engine_key=ENGINE)


def test_keeps_the_newest_two(tmp_path: Path) -> None:
    frozen, _ = gallery()
    snapshots = store(tmp_path, share=False)
    for sequence in (5, 9, 12):
        snapshots.write(frozen, network_id=NET, engine_key=ENGINE, sequence=sequence)
    assert snapshots.newest_sequence(network_id=NET, engine_key=ENGINE) == 12
    assert len(snapshots.snapshots(network_id=NET, engine_key=ENGINE)) == 2


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import facekey.gallery.snapshot as snapshot
    from snapshot_keys import Keys
    from test_snapshot import ENGINE, NET, gallery, store

    snapshot.CHUNK = 4096
    slow = snapshot._PartWriter._emit
    def emit(self, *, last):
        slow(self, last=last)
        self._file.flush()
        time.sleep(0.02)
    snapshot._PartWriter._emit = emit
    frozen, _ = gallery(n=3000, seed=1)
    target = store(Path(sys.argv[1]), share=False)
    target.write(frozen, network_id=NET, engine_key=ENGINE, sequence=2)
    """
)


def test_kill_9_while_writing_keeps_the_last_complete_snapshot(tmp_path: Path) -> None:
    frozen, vectors = gallery()
    snapshots = store(tmp_path, share=False)
    snapshots.write(frozen, network_id=NET, engine_key=ENGINE, sequence=1)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], env=environment)
    folder = snapshots.snapshots(network_id=NET, engine_key=ENGINE)[0].parent
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 50_000 for p in folder.glob(".*.tmp")):
        assert writer.poll() is None, "the writer ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert list(folder.glob(".*.tmp"))  # killed in the middle of writing
    restored = snapshots.restore(network_id=NET, engine_key=ENGINE)
    assert restored is not None and restored[0].sequence == 1
    assert top(restored[1], vectors[3]) == top(frozen, vectors[3])
    snapshots.write(frozen, network_id=NET, engine_key=ENGINE, sequence=3)
    assert not list(folder.glob(".*.tmp"))  # the next writer cleans up
