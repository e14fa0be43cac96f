"""Shared fixtures: real images, the real default engine, and databases on both backends.

``database_url`` (session scope, parametrised "sqlite" / "postgresql") is the URL of a fresh empty
database. PostgreSQL is a temporary server from the Debian packages, started once per session on
first use; when it is not installed, the PostgreSQL runs fail unless ``FACEKEY_SKIP_POSTGRES=1``.

Property tests (Hypothesis, Schemathesis) are deterministic: the ``facekey`` profile derandomizes
them, so CI runs the same examples every time; ``HYPOTHESIS_PROFILE=explore`` draws new ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from facekey.config import Settings
from facekey.engines.dlib_resnet import DlibResnetEngine
from facekey.engines.face_reid import FaceReidEngine
from facekey.pipeline import FacePipeline
from facekey.store.database import default_sqlite_url
from postgres_server import SKIP_ENV, PostgresServer, find_bin_dir

hypothesis_settings.register_profile(
    "facekey", derandomize=True, deadline=None, database=None, print_blob=True
)
hypothesis_settings.register_profile("explore", deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "facekey"))

FIXTURES = Path(__file__).parent / "fixtures"
BACKENDS = ("sqlite", "postgresql")

DatabaseUrlFactory = Callable[[str], str]


@pytest.fixture(scope="session", autouse=True)
def _shared_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Decrypted snapshot copies go to a temporary folder, not the machine's /dev/shm."""
    folder = tmp_path_factory.mktemp("shm")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEKEY_SHARED_INDEX_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def lfw(fixtures: Path) -> Path:
    return fixtures / "lfw"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory shared by the session (the converted model is cached here once)."""
    return tmp_path_factory.mktemp("facekey-data")


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


@pytest.fixture(scope="session")
def dlib_engine(settings: Settings) -> DlibResnetEngine:
    return DlibResnetEngine(backend="onnx", cache_dir=settings.models_dir / "converted")


@pytest.fixture(scope="session")
def reid_engine() -> FaceReidEngine:
    """The default engine of new networks, loaded once."""
    return FaceReidEngine()


@pytest.fixture(scope="session")
def reid_pipeline(settings: Settings, reid_engine: FaceReidEngine) -> FacePipeline:
    """The pipeline of the default engine of new networks."""
    return FacePipeline.from_settings(settings, engine=reid_engine)


@pytest.fixture(scope="session")
def pipeline(settings: Settings, dlib_engine: DlibResnetEngine) -> FacePipeline:
    return FacePipeline.from_settings(settings, engine=dlib_engine)


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A FACEKEY_DATA_DIR of its own for tests that run the CLI."""
    monkeypatch.setenv("FACEKEY_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path / "data"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One temporary PostgreSQL server for the whole session."""
    bin_dir = find_bin_dir()
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"PostgreSQL tests skipped: {SKIP_ENV}=1")
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): install the Debian "
            f"package `postgresql`, or set {SKIP_ENV}=1 to skip the PostgreSQL runs",
            pytrace=False,
        )
    server = PostgresServer.start(bin_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> DatabaseUrlFactory:
    """A function ``backend -> URL`` of a new empty database on that backend."""

    def new_url(backend: str) -> str:
        if backend == "sqlite":
            return default_sqlite_url(tmp_path_factory.mktemp("sqlite"))
        if backend == "postgresql":
            server: PostgresServer = request.getfixturevalue("postgres_server")
            return server.create_database()
        raise ValueError(f"unknown backend {backend!r}")

    return new_url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, database_url_factory: DatabaseUrlFactory) -> str:
    """A fresh empty database for the session, once per backend."""
    return database_url_factory(request.param)


@pytest.fixture
def fresh_database_url(database_url: str, database_url_factory: DatabaseUrlFactory) -> str:
    """A new empty database for one test, on the backend of ``database_url``."""
    return database_url_factory("sqlite" if database_url.startswith("sqlite") else "postgresql")
