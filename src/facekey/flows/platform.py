"""The long-lived objects of a facekey server process, built once and passed to the flows."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import select

from facekey.calibration import Calibrations, EngineCalibration
from facekey.config import Settings
from facekey.engines.base import Engine, EngineInfo
from facekey.flows.galleries import open_galleries, write_snapshots
from facekey.flows.protection import Vault, engine_key_of
from facekey.flows.risk import RiskConfig
from facekey.gallery.snapshot import SnapshotInfo
from facekey.gallery.sync import GalleryRegistry
from facekey.imaging import decode_image
from facekey.pipeline import Face, FacePipeline
from facekey.security.envelope import FileKek, KeyEncryptionKey
from facekey.store.database import Database, default_sqlite_url, private_directory
from facekey.store.tables import Network
from facekey.vision.quality import QualityPolicy
from facekey.vision.types import ImageArray

if TYPE_CHECKING:
    from facekey.liveness.session import LivenessChecker

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass
class FaceReader:
    """The pipeline of one engine in one process, serialised: detectors and interpreters are
    not thread-safe, and one process computes on one core anyway."""

    pipeline: FacePipeline
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def info(self) -> EngineInfo:
        return self.pipeline.engine.info

    @property
    def engine_key(self) -> str:
        return engine_key_of(self.info)

    def faces(self, data: bytes) -> tuple[tuple[int, int], list[Face]]:
        """((height, width), faces) of untrusted image bytes."""
        image = decode_image(data, self.pipeline.limits)
        with self._lock:
            return (image.shape[0], image.shape[1]), self.pipeline.faces(image)

    def faces_in(self, image: ImageArray) -> list[Face]:
        """The faces of an already decoded image."""
        with self._lock:
            return self.pipeline.faces(image)


def _new_liveness_checker() -> LivenessChecker:
    from facekey.liveness.session import LivenessChecker

    return LivenessChecker()


@dataclass
class LivenessReader:
    """The liveness checker of one process (detector, Face Mesh, passive models), built on
    first use and serialised like :class:`FaceReader` (its interpreters are not thread-safe)."""

    factory: Callable[[], LivenessChecker] = _new_liveness_checker
    _checker: LivenessChecker | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def use(self, work: Callable[[LivenessChecker], _T]) -> _T:
        """Run ``work`` with the checker, alone."""
        with self._lock:
            if self._checker is None:
                self._checker = self.factory()
            return work(self._checker)


class FaceReaders:
    """The face readers of one process, one per engine (entry-point name), built on first use.

    An engine's id is its entry-point name, so a template's engine key names its reader too.
    """

    def __init__(self, settings: Settings, preloaded: Sequence[Engine] = ()) -> None:
        self._settings = settings
        self._preloaded = {engine.info.id: engine for engine in preloaded}
        self._readers: dict[str, FaceReader] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> FaceReader:
        """The reader of engine ``name`` (loading the engine the first time)."""
        with self._lock:
            reader = self._readers.get(name)
            if reader is None:
                engine = self._preloaded.get(name)
                pipeline = FacePipeline.from_settings(
                    self._settings.model_copy(update={"engine": name}), engine=engine
                )
                reader = self._readers[name] = FaceReader(pipeline)
            return reader

    def for_key(self, engine_key: str) -> FaceReader:
        """The reader of the engine behind a gallery or template key ``"<id>:<version>"``."""
        return self.get(engine_key.split(":", 1)[0])


@dataclass
class Platform:
    """Settings, database, vault, face and liveness readers, calibrations and galleries of
    one process."""

    settings: Settings
    database: Database
    vault: Vault
    readers: FaceReaders
    calibrations: Calibrations
    galleries: GalleryRegistry
    quality_policy: QualityPolicy = field(default_factory=QualityPolicy)
    risk_config: RiskConfig = field(default_factory=RiskConfig)
    liveness: LivenessReader = field(default_factory=LivenessReader)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        engines: Sequence[Engine] = (),
        kek: KeyEncryptionKey | None = None,
    ) -> Platform:
        """Migrate the database and load the key-encryption key; engines load on first use.

        ``engines`` are used instead of loading engines of their names (tests share them).
        """
        database, vault = open_storage(settings, kek=kek)
        readers = FaceReaders(settings, engines)
        galleries = open_galleries(
            settings, database, vault, lambda key: readers.for_key(key).info.dimension
        )
        risk_config = RiskConfig(
            false_charge_target=settings.false_charge_target,
            step_up_false_charge_target=settings.step_up_false_charge_target,
            step_up_amount_minor=settings.step_up_amount_minor,
            max_amount_minor=settings.max_amount_minor,
        )
        return cls(
            settings,
            database,
            vault,
            readers,
            Calibrations(settings.data_dir / "calibrations"),
            galleries,
            risk_config=risk_config,
        )

    @property
    def reader(self) -> FaceReader:
        """The reader of the default engine (faces whose template is not stored or searched)."""
        return self.readers.get(self.settings.engine)

    def readers_of(self, network: Network) -> list[FaceReader]:
        """The readers of the network's engines: its own, then the one it migrates to."""
        return [self.readers.get(name) for name in network.engines]

    def calibration(self, info: EngineInfo) -> EngineCalibration | None:
        """The calibration tables of an engine version (None: it cannot decide matches)."""
        found = self.calibrations.for_engine(info)
        if found is None:
            log.warning("no calibration for %s %s: it never names a match", info.id, info.version)
        return found

    def warm(self) -> int:
        """Build every network's galleries now, before traffic; returns how many networks."""
        with self.database.session() as session:
            networks = list(session.scalars(select(Network)))
            session.expunge_all()
        for network in networks:
            for reader in self.readers_of(network):
                self.galleries.get(network.id, reader.engine_key).refresh()
        return len(networks)

    def write_snapshots(
        self, *, network_id: str | None = None, min_changes: int = 1
    ) -> list[SnapshotInfo]:
        """Seal a snapshot of every network's gallery (or one network's) that changed."""
        return write_snapshots(
            self.galleries,
            self.database,
            lambda network: [reader.engine_key for reader in self.readers_of(network)],
            network_id=network_id,
            min_changes=min_changes,
        )

    def close(self) -> None:
        """Release database connections."""
        self.database.dispose()


def open_storage(
    settings: Settings, *, kek: KeyEncryptionKey | None = None
) -> tuple[Database, Vault]:
    """The migrated database and the vault (creating the data directory, 0700, and the KEK if
    new)."""
    private_directory(settings.data_dir)
    database = Database(settings.database_url or default_sqlite_url(settings.data_dir))
    database.migrate()
    return database, Vault(kek or FileKek.load_or_create(settings.kek_path))
