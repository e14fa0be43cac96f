"""Tests of the dlib ResNet → ONNX converter (facekey.engines.dlib_convert)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dlib
import face_recognition_models as frm
import numpy as np
import onnxruntime as ort
import pytest

from facekey.engines import dlib_convert
from facekey.errors import ModelIntegrityError, ModelNotFound

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lfw"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def model_path() -> Path:
    path = Path(frm.face_recognition_model_location())
    assert path.is_file(), f"dlib's model file is missing: {path}"
    return path


@pytest.fixture(scope="module")
def model_bytes(model_path: Path) -> bytes:
    return model_path.read_bytes()


@pytest.fixture(scope="module")
def onnx_path(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dlib_convert.converted_model(model_path, tmp_path_factory.mktemp("cache"))


def _face_chips(dlib: Any, images: list[Path]) -> np.ndarray:
    """150×150 RGB chips of the first face in each image, aligned by dlib."""
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    chips = []
    for path in images:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        faces = detector(pixels, 1)
        if faces:
            shape = predictor(pixels, faces[0])
            chips.append(dlib.get_face_chip(pixels, shape, size=150, padding=0.25))
    assert chips, f"no face found in {images}"
    return np.stack(chips)


def test_parse_reads_the_whole_network(model_bytes: bytes) -> None:
    spec = dlib_convert.parse_resnet(model_bytes)
    kinds = [type(layer).__name__ for layer in spec.layers]
    assert kinds.count("Conv") == 29
    assert kinds.count("AddPrev") == 14
    assert kinds.count("Skip") == 4
    assert spec.embedding_size == 128
    assert (spec.input.rows, spec.input.cols) == (150, 150)
    assert spec.input.means == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert spec.margin == pytest.approx(0.04)
    assert spec.distance_threshold == pytest.approx(0.6)
    first = spec.layers[0]
    assert isinstance(first, dlib_convert.Conv)
    assert first.weights.shape == (32, 3, 7, 7)
    assert first.weights.dtype == np.float32


def test_onnx_matches_dlib(onnx_path: Path, model_path: Path) -> None:
    images = sorted(FIXTURES.glob("*.jpg"))[:3]
    assert images, f"no LFW fixture images in {FIXTURES} (tests/fixtures/lfw/*.jpg)"
    chips = _face_chips(dlib, images)
    recognizer = dlib.face_recognition_model_v1(str(model_path))
    expected = np.array([recognizer.compute_face_descriptor(chip) for chip in chips])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    (actual,) = session.run(["embeddings"], {"chips": chips})
    assert actual.shape == (len(chips), 128)
    assert actual.dtype == np.float32
    assert np.abs(actual - expected).max() <= TOLERANCE


@pytest.mark.parametrize(
    "mangle",
    [
        lambda data: b"",
        lambda data: data[:1],
        lambda data: data[:100],
        lambda data: data[: len(data) // 2],
        lambda data: data[:-1],
        lambda data: data + b"\x00",
        lambda data: bytes(range(256)) * 64,
        lambda data: b"\x01\x01\x01\x0dloss_metric_2" + b"\xff" * 64,
        lambda data: data.replace(b"con_4", b"con_9", 1),
    ],
    ids=[
        "empty",
        "one-byte",
        "header",
        "half",
        "last-byte-missing",
        "trailing-byte",
        "garbage",
        "bad-integer",
        "unknown-layer",
    ],
)
def test_malformed_bytes_raise_integrity_error(model_bytes: bytes, mangle: Any) -> None:
    with pytest.raises(ModelIntegrityError, match="dlib model file is malformed"):
        dlib_convert.parse_resnet(mangle(model_bytes))


def test_missing_source_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        dlib_convert.converted_model(tmp_path / "absent.dat", tmp_path / "cache")


def test_cache_is_reused_and_keyed_by_content(
    model_path: Path, model_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "nested" / "cache"
    first = dlib_convert.converted_model(model_path, cache)
    assert first.parent == cache
    assert first.name.startswith("dlib_resnet_v1-") and first.suffix == ".onnx"
    stamp = first.stat().st_mtime_ns

    def refuse(data: bytes) -> dlib_convert.ResNetSpec:
        raise AssertionError("the cached model was converted again")

    with monkeypatch.context() as patch:
        patch.setattr(dlib_convert, "parse_resnet", refuse)
        assert dlib_convert.converted_model(model_path, cache) == first
    assert first.stat().st_mtime_ns == stamp

    # A valid model with one different byte (the metric margin's mantissa).
    changed = model_bytes.replace(b"loss_metric_2\x03\x0a", b"loss_metric_2\x03\x0b", 1)
    assert changed != model_bytes
    other_source = tmp_path / "other.dat"
    other_source.write_bytes(changed)
    other = dlib_convert.converted_model(other_source, cache)
    assert other != first and other.is_file()
    assert sorted(os.listdir(cache)) == sorted([first.name, other.name])
