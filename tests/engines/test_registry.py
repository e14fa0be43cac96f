from __future__ import annotations

import pytest

from facekey.config import Settings
from facekey.engines.base import Engine
from facekey.engines.registry import available_engines, load_engine
from facekey.errors import UnknownEngine


def test_builtin_engines_are_registered() -> None:
    assert {"dlib-resnet-v1", "onnx-arcface", "fake"} <= set(available_engines())


def test_unknown_engine_lists_installed_ones() -> None:
    with pytest.raises(UnknownEngine, match="dlib-resnet-v1"):
        load_engine("no-such-engine")


def test_fake_engine_loads_by_name() -> None:
    engine = load_engine("fake", Settings())
    assert isinstance(engine, Engine)
    assert engine.info.id == "fake"


def test_default_engine_is_dlib(settings: Settings) -> None:
    engine = load_engine(settings.engine, settings)
    assert engine.info.id == "dlib-resnet-v1"
    assert engine.info.dimension == 128
