"""An API per backend on the real engine, with networks created through the admin flow."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from api_helpers import Network
from fastapi.testclient import TestClient

from facekey.config import Settings
from facekey.engines.dlib_resnet import DlibResnetEngine
from facekey.engines.face_reid import FaceReidEngine
from facekey.flows.platform import Platform
from facekey.flows.tenancy import create_network
from facekey.service.app import create_app


@pytest.fixture(scope="session")
def platform(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    reid_engine: FaceReidEngine,
    dlib_engine: DlibResnetEngine,
) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("api-data")
    settings = Settings(data_dir=data_dir, database_url=database_url)
    opened = Platform.open(settings, engines=[reid_engine, dlib_engine])
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform.settings, platform=platform)) as test_client:
        yield test_client


@pytest.fixture
def network(platform: Platform) -> Network:
    created = create_network(
        platform.database,
        platform.vault,
        f"net-{uuid.uuid4().hex}",
        engine=platform.settings.engine,
    )
    return Network(created.network_id, created.api_keys)


@pytest.fixture
def other_network(platform: Platform) -> Network:
    created = create_network(
        platform.database,
        platform.vault,
        f"other-{uuid.uuid4().hex}",
        engine=platform.settings.engine,
    )
    return Network(created.network_id, created.api_keys)
