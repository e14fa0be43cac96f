"""BlazeFace on real images (fixtures in tests/fixtures/blazeface, see SOURCE.md there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facekey.errors import ModelIntegrityError, ModelNotFound
from facekey.vision.blazeface import BlazeFaceDetector, ssd_anchors, weighted_nms
from facekey.vision.detectors import Detector
from facekey.vision.litert import PINNED_SHA256, LiteModel, load_interpreter
from facekey.vision.types import ImageArray

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "blazeface"
LFW = ("Aaron_Peirsol_0001.jpg", "Allen_Iverson_0001.jpg")


def load(name: str) -> ImageArray:
    with Image.open(FIXTURES / name) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module", params=["short", "full"])
def detector(request: pytest.FixtureRequest) -> BlazeFaceDetector:
    return BlazeFaceDetector(request.param)


@pytest.fixture(scope="module")
def short() -> BlazeFaceDetector:
    return BlazeFaceDetector("short")


def test_detector_protocol_and_names() -> None:
    assert isinstance(BlazeFaceDetector(), Detector)
    assert BlazeFaceDetector().name == "blazeface-short"
    assert BlazeFaceDetector("full").name == "blazeface-full"
    with pytest.raises(ValueError):
        BlazeFaceDetector("medium")  # type: ignore[arg-type]


def test_anchor_counts_match_the_models() -> None:
    assert ssd_anchors(128, ((8, 2), (16, 6))).shape == (896, 2)
    assert ssd_anchors(192, ((4, 1),)).shape == (2304, 2)


@pytest.mark.parametrize("name", LFW)
def test_lfw_face_found_centred(detector: BlazeFaceDetector, name: str) -> None:
    found = detector.detect(load(name))
    assert len(found) == 1
    face = found[0]
    cx, cy = face.box.center
    assert abs(cx - 125) < 25 and abs(cy - 130) < 30
    assert 70 < face.box.width < 160 and 70 < face.box.height < 160
    assert face.score >= 0.5 and face.detector == detector.name


def test_keypoints_in_image_pixels(short: BlazeFaceDetector) -> None:
    face = short.detect(load("Aaron_Peirsol_0001.jpg"))[0]
    points = face.keypoints
    assert points is not None and points.shape == (6, 2) and points.dtype == np.float32
    right_eye, left_eye, nose, mouth = points[:4]
    assert right_eye[0] < nose[0] < left_eye[0]  # the subject's right eye is on the image left
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    box = face.box
    assert all(
        box.left - 10 < x < box.right + 10 and box.top - 10 < y < box.bottom + 10 for x, y in points
    )


def test_masked_face_found(short: BlazeFaceDetector) -> None:
    found = short.detect(load("AdrianDunbar_0001.png"))
    assert len(found) == 1
    cx, cy = found[0].box.center
    assert 40 < cx < 120 and 40 < cy < 120


def test_letterboxed_wide_image_maps_back(short: BlazeFaceDetector) -> None:
    face = load("Aaron_Peirsol_0001.jpg")
    wide = np.zeros((250, 600, 3), dtype=np.uint8)
    wide[:, 300:550] = face
    found = short.detect(wide)
    assert len(found) == 1
    (ref_x, ref_y), (x, y) = short.detect(face)[0].box.center, found[0].box.center
    assert abs(x - 300 - ref_x) < 8 and abs(y - ref_y) < 8


def test_no_face_in_black_or_noise(detector: BlazeFaceDetector) -> None:
    assert detector.detect(np.zeros((480, 640, 3), dtype=np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (250, 250, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_rejects_non_rgb(short: BlazeFaceDetector) -> None:
    with pytest.raises(ValueError):
        short.detect(np.zeros((10, 10), dtype=np.uint8))


def test_weighted_nms_merges_overlaps_best_first() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=np.float32)
    points = np.zeros((3, 6, 2), dtype=np.float32)
    scores = np.array([0.6, 0.9, 0.7], dtype=np.float32)
    merged = weighted_nms(boxes, points, scores)
    assert [round(score, 2) for _, _, score in merged] == [0.9, 0.7]
    assert merged[0][0][0] == pytest.approx((0.6 * 0 + 0.9 * 1) / 1.5)


def test_sha256_mismatch_raises() -> None:
    with pytest.raises(ModelIntegrityError):
        load_interpreter("face_detection_short_range.tflite", sha256="0" * 64)


def test_unknown_model_file_raises() -> None:
    with pytest.raises(ModelNotFound):
        load_interpreter("no_such_model.tflite", sha256="0" * 64)


def test_models_are_pinned_and_loaded_lazily() -> None:
    assert set(PINNED_SHA256) == {
        "face_detection_short_range.tflite",
        "face_detection_full_range.tflite",
        "face_landmark.tflite",
    }
    model = LiteModel("face_detection_short_range.tflite")
    assert model._interpreter is None
    assert model.interpreter is model.interpreter
