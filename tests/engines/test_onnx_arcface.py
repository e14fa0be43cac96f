"""onnx-arcface: an operator's model file, loaded only when its sha256 matches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facekey.config import Settings
from facekey.engines.onnx_arcface import OnnxArcFaceEngine
from facekey.engines.registry import load_engine
from facekey.errors import ModelIntegrityError, ModelNotFound
from facekey.imaging import read_image_file
from facekey.integrity import PinnedFiles, sha256_file
from facekey.pipeline import FacePipeline
from facekey.vision.detectors import make_detector

DIM = 16


def _tiny_arcface(path: Path, *, side: int = 112, seed: int = 0) -> Path:
    """An ONNX model with ArcFace's input/output shapes: mean-pool 16×16 cells, then a matrix."""
    rng = np.random.default_rng(seed)
    cells = (side // 16) ** 2
    weight = numpy_helper.from_array(rng.normal(size=(3 * cells, DIM)).astype(np.float32), "w")
    nodes = [
        helper.make_node(
            "AveragePool", ["data"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["fc1"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, side, side])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", DIM])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return _tiny_arcface(tmp_path / "w600k_r50.onnx")


def test_add_checks_the_digest(model_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="sha256"):
        PinnedFiles(tmp_path).add(model_file, sha256="0" * 64, engine="onnx-arcface")
    assert PinnedFiles(tmp_path).all() == []


def test_add_refuses_a_malformed_digest(model_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="64"):
        PinnedFiles(tmp_path).add(model_file, sha256="abc", engine="onnx-arcface")


def test_registered_model_loads_by_name_and_embeds(
    model_file: Path, tmp_path: Path, lfw: Path
) -> None:
    digest = sha256_file(model_file)
    PinnedFiles(tmp_path / "models").add(model_file, sha256=digest, engine="onnx-arcface")
    engine = load_engine("onnx-arcface", Settings(data_dir=tmp_path))
    assert engine.info.dimension == DIM
    assert engine.info.version == f"sha256:{digest[:16]}"
    pipeline = FacePipeline(engine=engine, detector=make_detector(["hog0"]))
    faces = pipeline.faces(read_image_file(lfw / "Aaron_Sorkin_0001.jpg"))
    assert faces and faces[0].template.vector.shape == (DIM,)
    assert abs(float(np.linalg.norm(faces[0].template.vector)) - 1.0) < 1e-5


def test_preprocessing_scales_to_unit_range(model_file: Path) -> None:
    engine = OnnxArcFaceEngine(model_file, sha256_file(model_file))
    white = np.full((1, 112, 112, 3), 255, dtype=np.uint8)
    black = np.zeros((1, 112, 112, 3), dtype=np.uint8)
    # Pixels map to ±1: white and black are exact opposites through a linear model.
    np.testing.assert_allclose(engine.embed(white), -engine.embed(black), atol=1e-5)


def test_tampered_file_is_refused_at_load(model_file: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    record = PinnedFiles(models).add(
        model_file, sha256=sha256_file(model_file), engine="onnx-arcface"
    )
    stored = models / "files" / record.file
    stored.write_bytes(stored.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError):
        load_engine("onnx-arcface", Settings(data_dir=tmp_path))


def test_no_registered_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="models add"):
        load_engine("onnx-arcface", Settings(data_dir=tmp_path))


def test_wrong_input_shape_is_refused(tmp_path: Path) -> None:
    path = _tiny_arcface(tmp_path / "odd.onnx", side=128)
    with pytest.raises(ModelIntegrityError, match="112"):
        OnnxArcFaceEngine(path, sha256_file(path))


def test_garbage_model_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"not an onnx model" * 10)
    with pytest.raises(ModelIntegrityError, match="cannot load"):
        OnnxArcFaceEngine(path, sha256_file(path))
