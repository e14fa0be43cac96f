"""The pages' app on SQLite with the real engines, a test client per test, and a network."""

from __future__ import annotations

import itertools
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from facekey.config import Settings
from facekey.engines.dlib_resnet import DlibResnetEngine
from facekey.engines.face_reid import FaceReidEngine
from facekey.flows import liveness as liveness_flow
from facekey.flows.platform import Platform
from facekey.flows.tenancy import create_network
from facekey.service.app import create_app

# The API tests' helpers (signed terminals, multipart bodies) serve these tests too.
sys.path.insert(0, str(Path(__file__).parents[1] / "service"))

from web_helpers import WebNetwork

_addresses = (f"10.16.{n // 250}.{n % 250 + 1}" for n in itertools.count())


@pytest.fixture(scope="session")
def web_platform(
    tmp_path_factory: pytest.TempPathFactory,
    reid_engine: FaceReidEngine,
    dlib_engine: DlibResnetEngine,
) -> Iterator[Platform]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("web-data"))
    opened = Platform.open(settings, engines=[reid_engine, dlib_engine])
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def web_app(web_platform: Platform) -> FastAPI:
    return create_app(web_platform.settings, platform=web_platform)


@pytest.fixture
def client(web_app: FastAPI) -> Iterator[TestClient]:
    """A browser-like client on loopback, from an address of its own (rate limits count by
    address, so tests do not share them)."""
    with TestClient(
        web_app, base_url="http://127.0.0.1", client=(next(_addresses), 50000)
    ) as test_client:
        yield test_client


@pytest.fixture
def network(web_platform: Platform) -> WebNetwork:
    name = f"web-{uuid.uuid4().hex[:12]}"
    created = create_network(
        web_platform.database, web_platform.vault, name, engine=web_platform.settings.engine
    )
    return WebNetwork(created.network_id, name, created.api_keys)


@pytest.fixture
def challenges(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Camera checks ask for the two challenges the real fixture sequence performs."""
    chosen = ["turn_right", "look_up"]
    monkeypatch.setattr(liveness_flow, "random_challenges", lambda: tuple(chosen))
    return chosen
