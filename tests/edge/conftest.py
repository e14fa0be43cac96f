"""The edge tests' server: one SQLite platform on the real engines, a test client, a network
with a store; and the device software talking to it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from edge_helpers import write_video
from fastapi.testclient import TestClient

from facekey.config import Settings
from facekey.engines.dlib_resnet import DlibResnetEngine
from facekey.engines.face_reid import FaceReidEngine
from facekey.evaluation.liveness_sessions import moved_still
from facekey.flows.platform import Platform
from facekey.flows.tenancy import create_network
from facekey.imaging import read_image_file
from facekey.service.app import create_app
from facekey.store.database import default_sqlite_url
from fleet_helpers import new_store


@pytest.fixture(scope="session")
def edge_platform(
    tmp_path_factory: pytest.TempPathFactory,
    reid_engine: FaceReidEngine,
    dlib_engine: DlibResnetEngine,
) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("edge-server")
    settings = Settings(data_dir=data_dir, database_url=default_sqlite_url(data_dir))
    opened = Platform.open(settings, engines=[reid_engine, dlib_engine])
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def edge_client(edge_platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(edge_platform.settings, platform=edge_platform)) as client:
        yield client


@pytest.fixture
def shop(edge_platform: Platform) -> tuple[str, dict[str, str], str]:
    """A new network's id, its API keys (by scope) and one of its stores."""
    created = create_network(
        edge_platform.database,
        edge_platform.vault,
        f"edge-{uuid.uuid4().hex}",
        engine=edge_platform.settings.engine,
    )
    network_id = created.network_id
    return network_id, created.api_keys, new_store(edge_platform, network_id)


@pytest.fixture(scope="session")
def liveness_frames() -> Path:
    return Path(__file__).parents[1] / "fixtures" / "liveness"


@pytest.fixture(scope="session")
def face_video(tmp_path_factory: pytest.TempPathFactory, liveness_frames: Path) -> Path:
    """A short video of a real person making small head movements."""
    images = [read_image_file(p) for p in sorted(liveness_frames.glob("head-turn-*.jpg"))]
    return write_video(tmp_path_factory.mktemp("video") / "customer.avi", images)


@pytest.fixture(scope="session")
def photo_video(tmp_path_factory: pytest.TempPathFactory, liveness_frames: Path) -> Path:
    """A printed photo held in front of the camera, moving a little."""
    photo = read_image_file(liveness_frames / "nuaa-attack-0001_00_00_01_0.jpg")
    images = moved_still(photo, 8, np.random.default_rng(3))
    return write_video(tmp_path_factory.mktemp("video") / "photo.avi", images)
