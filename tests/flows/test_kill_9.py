"""Nothing lost when a process is killed with SIGKILL during a bulk load or during erasures.

The killed work runs in a child process on the test's database (SQLite and PostgreSQL); the
test waits until some of it is committed, kills the child, and checks that the database, its
change log and a gallery started from a snapshot taken before agree: whole chunks, whole
erasures, and no erased subject ever returned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import func, select

from facekey.config import Settings
from facekey.engines.base import EngineInfo
from facekey.flows.bulk_load import load_templates
from facekey.flows.galleries import open_galleries
from facekey.flows.platform import open_storage
from facekey.flows.protection import Vault
from facekey.flows.tenancy import create_network
from facekey.gallery.sync import SyncedGallery
from facekey.store import tenants
from facekey.store.database import Database
from facekey.store.tables import GalleryChange, Subject, Template

INFO = EngineInfo("bulk-test", "1", 32, chip_size=0)
KEY = "bulk-test:1"
FloatArray = npt.NDArray[np.float32]


def vectors(n: int, seed: int = 0) -> FloatArray:
    x = np.random.default_rng(seed).standard_normal((n, INFO.dimension)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def settings(fresh_database_url: str, tmp_path: Path) -> Iterator[Settings]:
    (tmp_path / "shm").mkdir()
    yield Settings(
        data_dir=tmp_path / "data",
        database_url=fresh_database_url,
        shared_index_dir=tmp_path / "shm",
        snapshot_min_templates=1,
    )
    for database in OPENED:
        database.dispose()
    OPENED.clear()


OPENED: list[Database] = []


def child(settings: Settings, script: str, *args: str) -> subprocess.Popen[bytes]:
    from facekey.flows.galleries import child_environment

    code = textwrap.dedent(script)
    environment = child_environment(settings)
    environment["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), *sys.path])
    return subprocess.Popen([sys.executable, "-c", code, *args], env=environment)


def kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 120
    while not ready():
        assert process.poll() is None, "the child finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def count(database: Database, statement: object) -> int:
    with database.session() as session:
        return int(session.scalar(statement) or 0)  # type: ignore[call-overload]


def gallery(settings: Settings, network_id: str) -> SyncedGallery:
    """A new worker's gallery (its own database connections, closed after the test)."""
    database, vault = open_storage(settings)
    OPENED.append(database)
    return open_galleries(settings, database, vault, lambda _: INFO.dimension).get(network_id, KEY)


def found(g: SyncedGallery, probe: FloatArray) -> set[str]:
    return {h.subject_id for h in g.search(probe, 20, accept=lambda hits: hits)}


def protected(database: Database, vault: Vault, network_id: str, raw: FloatArray) -> FloatArray:
    """Probes as the gallery holds templates: through the network's secret transform."""
    with database.session() as session:
        network = tenants.get_network(session, network_id=network_id)
        assert network is not None
        return vault.transform_for(network, KEY, INFO.dimension).apply(raw)


BULK = """
    import sys, time
    import numpy as np
    import facekey.flows.bulk_load as bulk
    from facekey.config import Settings
    from facekey.flows.platform import open_storage
    from test_kill_9 import INFO, vectors

    commit = bulk._load_chunk
    def slow(*args, **kwargs):
        done = commit(*args, **kwargs)
        time.sleep(0.2)  # a window to be killed in, between and during chunks
        return done
    bulk._load_chunk = slow
    database, vault = open_storage(Settings())
    bulk.load_templates(database, vault, sys.argv[1], INFO, vectors(3000), chunk=100)
"""


def test_kill_9_during_bulk_load_leaves_whole_chunks(settings: Settings) -> None:
    database, vault = open_storage(settings)
    network_id = create_network(database, vault, "bulk", engine=INFO.id).network_id
    loader = child(settings, BULK, network_id)
    templates = select(func.count()).select_from(Template)
    kill_when(loader, lambda: count(database, templates) >= 300)
    loaded = count(database, templates)
    assert loaded % 100 == 0 and 300 <= loaded < 3000  # whole chunks, and not all of them
    assert count(database, select(func.count()).select_from(Subject)) == loaded
    adds = select(func.count()).select_from(GalleryChange).where(GalleryChange.kind == "add")
    assert count(database, adds) == loaded  # every committed template is in the change log
    g = gallery(settings, network_id)
    assert len(g.index) == loaded
    all_vectors = vectors(3000)
    last = protected(database, vault, network_id, all_vectors[loaded - 1])
    assert g.search(last, 1, accept=lambda h: h)[0].score == pytest.approx(1.0, abs=1e-5)
    beyond = protected(database, vault, network_id, all_vectors[loaded])
    assert g.search(beyond, 1, accept=lambda h: h)[0].score < 0.99  # never committed
    rest = load_templates(database, vault, network_id, INFO, all_vectors[loaded:], chunk=500)
    assert sum(len(c.template_ids) for c in rest) == 3000 - loaded
    assert len(g.index) == 3000  # the running gallery sees the rest through the log
    database.dispose()


ERASE = """
    import sys, time
    from sqlalchemy import select
    from facekey.config import Settings
    from facekey.flows.platform import open_storage
    from facekey.store.erasure import erase_subject
    from facekey.store.tables import Subject

    database, _ = open_storage(Settings())
    for subject_id in sys.argv[1:]:
        with database.session() as session:
            subject = session.scalars(select(Subject).where(Subject.id == subject_id)).one()
            erase_subject(session, subject=subject, actor="test")
        time.sleep(0.1)
"""


def test_kill_9_during_erasures_never_brings_a_subject_back(settings: Settings) -> None:
    database, vault = open_storage(settings)
    network_id = create_network(database, vault, "erase", engine=INFO.id).network_id
    chunks = load_templates(database, vault, network_id, INFO, vectors(200), chunk=50)
    subject_ids = [s for c in chunks for s in c.subject_ids]
    before = gallery(settings, network_id)
    assert before.write_snapshot() is not None  # a snapshot holding every subject
    eraser = child(settings, ERASE, *subject_ids[:100])
    erased = select(func.count()).select_from(Subject).where(Subject.status == "erased")
    kill_when(eraser, lambda: count(database, erased) >= 5)
    gone = {s for s in subject_ids if _status(database, s) == "erased"}
    assert 5 <= len(gone) < 100
    with database.session() as session:
        left = set(session.scalars(select(Template.subject_id)))
        removals = set(
            session.scalars(
                select(GalleryChange.subject_id).where(GalleryChange.kind == "remove_subject")
            )
        )
    assert left == set(subject_ids) - gone  # every erasure whole: templates gone with it
    assert removals == gone  # and logged
    probes = protected(database, vault, network_id, vectors(200))
    for g in (before, gallery(settings, network_id)):  # running, and new from the snapshot
        for row, subject_id in enumerate(subject_ids[:100]):
            hits = found(g, probes[row])
            assert (subject_id in hits) == (subject_id not in gone)
    database.dispose()


def _status(database: Database, subject_id: str) -> str:
    with database.session() as session:
        return str(session.scalar(select(Subject.status).where(Subject.id == subject_id)))
