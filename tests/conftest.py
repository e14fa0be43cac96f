"""Shared fixtures: real images from tests/fixtures and the real default engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facekey.config import Settings
from facekey.engines.dlib_resnet import DlibResnetEngine
from facekey.pipeline import FacePipeline

FIXTURES = Path(__file__).parent / "fixtures"


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
def pipeline(settings: Settings, dlib_engine: DlibResnetEngine) -> FacePipeline:
    return FacePipeline.from_settings(settings, engine=dlib_engine)


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A FACEKEY_DATA_DIR of its own for tests that run the CLI."""
    monkeypatch.setenv("FACEKEY_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path / "data"
