"""The long-lived objects of a facekey server process, built once and passed to the flows."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select

from facekey.calibration import shipped_calibration
from facekey.config import Settings
from facekey.engines.base import Engine, EngineInfo
from facekey.evaluation.metrics import CalibrationTable
from facekey.flows.galleries import open_galleries, write_snapshots
from facekey.flows.protection import Vault, engine_key_of
from facekey.flows.risk import RiskConfig
from facekey.gallery.sync import GalleryRegistry
from facekey.imaging import decode_image
from facekey.pipeline import Face, FacePipeline
from facekey.security.envelope import FileKek, KeyEncryptionKey
from facekey.store.database import Database, default_sqlite_url
from facekey.store.tables import Network
from facekey.vision.quality import QualityPolicy
from facekey.vision.types import ImageArray

if TYPE_CHECKING:
    from facekey.liveness.session import LivenessChecker

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass
class FaceReader:
    """The pipeline of one process, serialised: detectors and interpreters are not
    thread-safe, and one process computes on one core anyway."""

    pipeline: FacePipeline
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def info(self) -> EngineInfo:
        return self.pipeline.engine.info

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


@dataclass
class Platform:
    """Settings, database, vault, face and liveness readers, calibration and galleries of one
    process."""

    settings: Settings
    database: Database
    vault: Vault
    reader: FaceReader
    calibration: CalibrationTable | None
    galleries: GalleryRegistry
    quality_policy: QualityPolicy = field(default_factory=QualityPolicy)
    risk_config: RiskConfig = field(default_factory=RiskConfig)
    liveness: LivenessReader = field(default_factory=LivenessReader)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        engine: Engine | None = None,
        kek: KeyEncryptionKey | None = None,
    ) -> Platform:
        """Migrate the database, load the key-encryption key and the engine."""
        database, vault = open_storage(settings, kek=kek)
        pipeline = FacePipeline.from_settings(settings, engine=engine)
        info = pipeline.engine.info
        galleries = open_galleries(settings, database, vault, info)
        calibration = shipped_calibration(info)
        if calibration is None:
            log.warning("no calibration for %s: identification will never name a match", info.id)
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
            FaceReader(pipeline),
            calibration,
            galleries,
            risk_config=risk_config,
        )

    @property
    def engine_key(self) -> str:
        return engine_key_of(self.reader.info)

    def warm(self) -> int:
        """Build every network's gallery now, before traffic; returns how many."""
        with self.database.session() as session:
            network_ids = list(session.scalars(select(Network.id)))
        for network_id in network_ids:
            self.galleries.get(network_id, self.engine_key).refresh()
        return len(network_ids)

    def write_snapshots(
        self, *, network_id: str | None = None, min_changes: int = 1
    ) -> list[dict[str, Any]]:
        """Seal a snapshot of every network's gallery (or one network's) that changed."""
        return write_snapshots(
            self.galleries,
            self.database,
            self.reader.info,
            network_id=network_id,
            min_changes=min_changes,
        )

    def close(self) -> None:
        """Release database connections."""
        self.database.dispose()


def open_storage(
    settings: Settings, *, kek: KeyEncryptionKey | None = None
) -> tuple[Database, Vault]:
    """The migrated database and the vault (creating the data directory and KEK if new)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_url or default_sqlite_url(settings.data_dir))
    database.migrate()
    return database, Vault(kek or FileKek.load_or_create(settings.kek_path))
