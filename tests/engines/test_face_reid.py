"""face-reid-0095, the default engine of new networks, on real faces."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facekey.engines.face_reid import INFO, MODEL_FILE, MODEL_SHA256, FaceReidEngine
from facekey.engines.registry import load_engine
from facekey.errors import ModelIntegrityError
from facekey.imaging import read_image_file
from facekey.pipeline import FacePipeline, main_face
from facekey.templates import Template
from facekey.vision.align import BLAZEFACE_FRAME, DLIB_FRAME, canonical_points
from facekey.vision.types import Box, Detection

PEOPLE = ("Aaron_Peirsol", "Aaron_Sorkin", "Abdel_Nasser_Assidi")


def _template(pipeline: FacePipeline, path: Path) -> Template:
    image = read_image_file(path)
    return main_face(pipeline.faces(image), image.shape).template


def test_identity_and_entry_point(reid_engine: FaceReidEngine) -> None:
    assert reid_engine.info == INFO
    assert (INFO.id, INFO.dimension, INFO.chip_size) == ("face-reid-0095", 256, 128)
    assert isinstance(load_engine("face-reid-0095"), FaceReidEngine)


def test_same_person_scores_above_every_stranger(reid_pipeline: FacePipeline, lfw: Path) -> None:
    templates = {
        (p, i): _template(reid_pipeline, lfw / f"{p}_000{i}.jpg") for p in PEOPLE for i in (1, 2)
    }
    for person in PEOPLE:
        genuine = templates[(person, 1)].similarity(templates[(person, 2)])
        strangers = [
            templates[(person, 1)].similarity(templates[(o, i)])
            for o in PEOPLE
            if o != person
            for i in (1, 2)
        ]
        assert genuine > 0.45 > max(strangers), person


def test_masked_face_still_matches_its_owner(reid_pipeline: FacePipeline, fixtures: Path) -> None:
    masked = _template(reid_pipeline, fixtures / "mfr2" / "AdrianDunbar_0001.png")
    bare = _template(reid_pipeline, fixtures / "mfr2" / "AdrianDunbar_0002.png")
    stranger = _template(reid_pipeline, fixtures / "lfw" / "Aaron_Sorkin_0001.jpg")
    assert masked.similarity(bare) > 0.3 > masked.similarity(stranger)


def test_embeddings_are_unit_vectors_and_batches_agree(
    reid_engine: FaceReidEngine, reid_pipeline: FacePipeline, lfw: Path
) -> None:
    chips = []
    for person in PEOPLE:
        image = read_image_file(lfw / f"{person}_0001.jpg")
        face = main_face(reid_pipeline.faces(image), image.shape)
        chips.append(reid_engine.align(image, face.landmarks, face.detection))
    batch = reid_engine.embed(np.stack(chips))
    assert batch.shape == (3, 256) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    one = reid_engine.embed(np.stack(chips[:1]))
    np.testing.assert_allclose(one[0], batch[0], atol=1e-5)
    assert reid_engine.embed(np.zeros((0, 128, 128, 3), np.uint8)).shape == (0, 256)
    with pytest.raises(ValueError, match="128"):
        reid_engine.embed(np.zeros((1, 112, 112, 3), np.uint8))


def test_alignment_uses_blazeface_keypoints_else_dlib_points() -> None:
    landmarks = np.array([[70, 50], [60, 50], [30, 50], [40, 50], [50, 70]], np.float32)
    keypoints = np.array([[35, 50], [65, 50], [50, 62], [50, 80], [20, 55], [80, 55]], np.float32)
    blazeface = Detection(Box(20, 30, 80, 100), 0.9, "blazeface-short", keypoints)
    points, frame = canonical_points(landmarks, blazeface)
    assert frame is BLAZEFACE_FRAME and points.shape == (4, 2)
    np.testing.assert_allclose(points[2], keypoints[2])  # the nose tip
    hog = Detection(Box(20, 30, 80, 100), 1.0, "hog0")
    points, frame = canonical_points(landmarks, hog)
    assert frame is DLIB_FRAME and points.shape == (3, 2)
    np.testing.assert_allclose(points[:2], [[35, 50], [65, 50]])  # eye centres, left first


def test_a_tampered_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "tampered_reid"
    folder = package / "models" / "face-reid-0095"
    folder.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    source = Path(__file__).parents[2] / "src" / "facekey" / "models" / "face-reid-0095"
    shutil.copy(source / MODEL_FILE, folder / MODEL_FILE)
    with (folder / MODEL_FILE).open("ab") as handle:
        handle.write(b"\0")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelIntegrityError, match=MODEL_SHA256[:8]):
        FaceReidEngine(package="tampered_reid")


def test_the_faster_graph_computes_the_same_embeddings(lfw: Path) -> None:
    import onnx

    from facekey.engines.onnx_runtime import scalar_prelu_as_leaky_relu, single_thread_session

    source = Path(__file__).parents[2] / "src" / "facekey" / "models" / "face-reid-0095"
    original = (source / MODEL_FILE).read_bytes()
    rewritten = scalar_prelu_as_leaky_relu(original)
    ops = [node.op_type for node in onnx.load_from_string(rewritten).graph.node]
    assert "PRelu" not in ops and ops.count("LeakyRelu") == 48
    inputs = np.random.default_rng(5).uniform(0, 255, (4, 3, 128, 128)).astype(np.float32)
    before = single_thread_session(original).run(None, {"data": inputs})[0]
    after = single_thread_session(rewritten).run(None, {"data": inputs})[0]
    np.testing.assert_allclose(after, before, atol=1e-4)
