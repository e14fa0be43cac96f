"""How a process's galleries are built from the settings: backend, snapshots and their schedule.

FAISS (the default) runs in the process: each gallery starts from its newest sealed snapshot
plus the change log, maps the machine's one decrypted copy, and is snapshotted again in the
background. Milvus holds the vectors in its own server (milvus-lite in a file for tests and
trials): nothing to snapshot, the collection persists itself. Either way every hit is re-checked
against the database by the flows, and only transformed templates leave the vault.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable

from sqlalchemy import select

from facekey.config import Settings
from facekey.errors import NotFound
from facekey.flows.gallery_source import StoreGallerySource
from facekey.flows.protection import Vault
from facekey.gallery.backend import GalleryBackend
from facekey.gallery.frozen import BaseSpec
from facekey.gallery.index import GalleryIndex
from facekey.gallery.snapshot import Identity, SnapshotInfo, SnapshotStore
from facekey.gallery.sync import GalleryRegistry
from facekey.store import tenants
from facekey.store.database import Database
from facekey.store.tables import Network

log = logging.getLogger(__name__)


#: The template length of an engine key ("<engine id>:<version>").
DimensionOf = Callable[[str], int]


class VaultSnapshotKeys:
    """Binds snapshots to a network's transform generation; wraps their keys with the KEK."""

    def __init__(self, database: Database, vault: Vault, dimension_of: DimensionOf) -> None:
        self._database = database
        self._vault = vault
        self._dimension_of = dimension_of

    def identity(self, *, network_id: str, engine_key: str) -> Identity:
        with self._database.session() as session:
            network = tenants.get_network(session, network_id=network_id)
            if network is None:
                raise NotFound(f"no network {network_id}")
            session.expunge(network)
        dimension = self._dimension_of(engine_key)
        transform = self._vault.transform_for(network, engine_key, dimension)
        return {
            "network_id": network_id,
            "engine_key": engine_key,
            "dimension": dimension,
            "transform_version": network.transform_version,
            "transform_fingerprint": transform.fingerprint,
        }

    def new_key(self, *, network_id: str, engine_key: str) -> tuple[bytes, bytes]:
        return self._vault.new_snapshot_key(network_id, engine_key)

    def open_key(self, *, network_id: str, engine_key: str, wrapped: bytes) -> bytes:
        return self._vault.snapshot_key(network_id, engine_key, wrapped)


def base_spec(settings: Settings) -> BaseSpec:
    """The FAISS index parameters the settings ask for."""
    return BaseSpec(
        hnsw_threshold=settings.hnsw_threshold,
        hnsw_m=settings.hnsw_m,
        ef_construction=settings.hnsw_ef_construction,
        ef_search=settings.hnsw_ef_search,
    )


def snapshot_store(
    settings: Settings, database: Database, vault: Vault, dimension_of: DimensionOf
) -> SnapshotStore | None:
    """The snapshot store of a FAISS deployment (None when snapshots are off or on Milvus)."""
    if not settings.snapshots or settings.gallery_backend != "faiss":
        return None
    share = settings.shared_index_dir
    if share is not None and not share.is_dir():
        log.warning("%s does not exist: every process keeps its own index copy", share)
        share = None
    return SnapshotStore(
        settings.snapshot_path,
        VaultSnapshotKeys(database, vault, dimension_of),
        spec=base_spec(settings),
        share_dir=share,
    )


def open_galleries(
    settings: Settings, database: Database, vault: Vault, dimension_of: DimensionOf
) -> GalleryRegistry:
    """The gallery registry of one process, for the configured backend; ``dimension_of``
    gives the template length of each engine key (a network may search two engines)."""
    return GalleryRegistry(
        StoreGallerySource(database, vault),
        _backend_factory(settings, dimension_of),
        snapshots=snapshot_store(settings, database, vault, dimension_of),
        snapshot_min_templates=settings.snapshot_min_templates,
    )


def _backend_factory(
    settings: Settings, dimension_of: DimensionOf
) -> Callable[[str, str], GalleryBackend]:
    if settings.gallery_backend == "milvus":
        from facekey.gallery.milvus import MilvusGallery, connect

        uri = settings.milvus_uri or str(settings.data_dir / "milvus.db")
        client = connect(uri, token=settings.milvus_token)
        return lambda network_id, engine_key: MilvusGallery(
            client, network_id=network_id, engine_key=engine_key, dimension=dimension_of(engine_key)
        )
    spec = base_spec(settings)
    return lambda _network_id, engine_key: GalleryIndex(
        dimension_of(engine_key),
        hnsw_threshold=spec.hnsw_threshold,
        hnsw_m=spec.hnsw_m,
        ef_construction=spec.ef_construction,
        ef_search=spec.ef_search,
    )


# ---------------------------------------------------------------------- writing snapshots


def write_snapshots(
    galleries: GalleryRegistry,
    database: Database,
    engine_keys_of: Callable[[Network], list[str]],
    *,
    network_id: str | None = None,
    min_changes: int = 1,
) -> list[SnapshotInfo]:
    """Snapshot every gallery of every network (or of one network): one per engine it
    searches (two while it migrates)."""
    with database.session() as session:
        networks = list(session.scalars(select(Network)))
        session.expunge_all()
    if network_id is not None:
        networks = [n for n in networks if n.id == network_id]
        if not networks:
            raise NotFound(f"no network {network_id}")
    written = []
    for network in networks:
        for key in engine_keys_of(network):
            done = galleries.get(network.id, key).write_snapshot(min_changes=min_changes)
            if done is not None:
                written.append(done)
    return written


class SnapshotSchedule:
    """Every ``snapshot_interval_s``, one process of the machine (whichever holds the schedule
    lock) runs ``facekey admin snapshot`` at low priority, in a child process, so that serving
    is not slowed down by the merge and the sealing."""

    def __init__(self, settings: Settings, store: SnapshotStore | None) -> None:
        self._settings = settings
        self._store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)

    def start(self) -> None:
        if self._store is not None and self._settings.snapshot_interval_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        assert self._store is not None
        with self._store.machine_lock("schedule"):  # waits while another worker schedules
            while not self._stop.wait(self._settings.snapshot_interval_s):
                self.run_once()

    def run_once(self) -> int:
        """Write the due snapshots now, in a child process; returns its exit status."""
        command = [
            "nice",
            "-n",
            "10",
            sys.executable,
            "-m",
            "facekey.cli",
            "admin",
            "snapshot",
            "--min-changes",
            str(self._settings.snapshot_min_changes),
        ]
        done = subprocess.run(
            command, env=child_environment(self._settings), capture_output=True, check=False
        )
        if done.returncode != 0:
            log.warning("background snapshot failed: %s", done.stderr.decode()[-500:])
        return done.returncode


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment under which a child ``facekey`` command sees these settings."""
    environment = dict(os.environ)
    for name, value in settings.model_dump(exclude_defaults=True, mode="json").items():
        if isinstance(value, dict | list):
            environment[f"FACEKEY_{name.upper()}"] = json.dumps(value)
        elif value is not None:
            environment[f"FACEKEY_{name.upper()}"] = str(value)
    return environment
