from __future__ import annotations

import pytest

from facekey.config import Settings
from facekey.engines.base import Engine
from facekey.engines.registry import available_engines, check_engine_name, load_engine
from facekey.errors import UnknownEngine


def test_builtin_engines_are_registered() -> None:
    assert {"dlib-resnet-v1", "face-reid-0095", "onnx-arcface", "fake"} <= set(available_engines())


def test_unknown_engine_lists_installed_ones() -> None:
    with pytest.raises(UnknownEngine, match="dlib-resnet-v1"):
        load_engine("no-such-engine")


def test_fake_engine_loads_by_name() -> None:
    engine = load_engine("fake", Settings())
    assert isinstance(engine, Engine)
    assert engine.info.id == "fake"


def test_default_engine_is_face_reid(settings: Settings) -> None:
    engine = load_engine(settings.engine, settings)
    assert engine.info.id == "face-reid-0095"
    assert engine.info.dimension == 256


def test_engine_names_are_checked_before_any_work() -> None:
    assert check_engine_name("dlib-resnet-v1") == "dlib-resnet-v1"
    with pytest.raises(UnknownEngine, match="face-reid-0095"):
        check_engine_name("no-such-engine")
