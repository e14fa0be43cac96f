"""The pipeline on real images with the real default engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facekey.errors import NoFace, TruncatedImage
from facekey.imaging import read_image_file
from facekey.pipeline import FacePipeline, StageTimer, main_face
from facekey.vision.detectors import ChainDetector, HogDetector, make_detector


def test_one_face_with_template_and_quality(pipeline: FacePipeline, lfw: Path) -> None:
    timer = StageTimer()
    faces = pipeline.faces_in_bytes((lfw / "Aaron_Sorkin_0001.jpg").read_bytes(), timer)
    assert len(faces) == 1
    face = faces[0]
    assert face.template.engine_id == "dlib-resnet-v1"
    assert face.template.vector.shape == (128,)
    assert face.landmarks.shape == (5, 2)
    assert 0.0 < face.quality.score <= 1.0
    assert face.quality.eye_distance_px > 30
    assert abs(face.quality.yaw_deg) < 20
    assert all(timer.ms[stage] > 0 for stage in ("decode", "detect", "embed"))


@pytest.mark.parametrize("name", ["Colin_Farrell_0003.jpg", "Cheryl_Hines_0001.jpg"])
def test_several_faces_all_returned_and_main_face_is_central(
    pipeline: FacePipeline, lfw: Path, name: str
) -> None:
    image = read_image_file(lfw / name)
    faces = pipeline.faces(image)
    assert len(faces) >= 2
    main = main_face(faces, image.shape)
    cx, cy = main.detection.box.center
    assert abs(cx - 125) < 40 and abs(cy - 125) < 40


def test_main_face_matches_the_subject_across_photos(pipeline: FacePipeline, lfw: Path) -> None:
    image = read_image_file(lfw / "Colin_Farrell_0003.jpg")
    faces = pipeline.faces(image)
    main = main_face(faces, image.shape)
    others = [f for f in faces if f is not main]
    # The main face of a group photo is one person; the other face is someone else.
    assert all(main.template.similarity(o.template) < 0.93 for o in others)


def test_no_face(pipeline: FacePipeline, lfw: Path) -> None:
    # A real photo's background corner: texture, no face.
    image = read_image_file(lfw / "Aaron_Sorkin_0001.jpg")[:60, :60]
    enlarged = np.asarray(Image.fromarray(image).resize((240, 240)))
    assert pipeline.faces(np.ascontiguousarray(enlarged)) == []
    with pytest.raises(NoFace):
        main_face([], enlarged.shape)


def test_masked_face_found_by_the_fallback_chain(pipeline: FacePipeline, fixtures: Path) -> None:
    image = read_image_file(fixtures / "mfr2" / "AdrianDunbar_0001.png")
    assert HogDetector(0).detect(image) == []  # HOG alone misses this masked face
    faces = pipeline.faces(image)
    assert len(faces) == 1
    assert faces[0].detection.detector.startswith("blazeface")


def test_corrupt_bytes_raise_before_detection(pipeline: FacePipeline, lfw: Path) -> None:
    data = (lfw / "Aaron_Sorkin_0001.jpg").read_bytes()
    with pytest.raises(TruncatedImage):
        pipeline.faces_in_bytes(data[: len(data) // 3])


def test_detector_chain_order_is_a_setting() -> None:
    chain = make_detector(["hog0", "blazeface-short", "hog1"])
    assert isinstance(chain, ChainDetector)
    assert chain.name == "hog0>blazeface-short>hog1"
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector(["yolo"])


class _Recording:
    """Wraps dlib's detector and records the size of every image it scans."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.scanned: list[tuple[int, int]] = []

    def run(self, image: np.ndarray, upsample: int, threshold: float) -> object:
        self.scanned.append(image.shape[:2])
        return self.inner.run(image, upsample, threshold)  # type: ignore[attr-defined]


@pytest.mark.parametrize("upsample", [0, 1])
def test_hog_scans_a_large_image_within_its_pixel_budget(lfw: Path, upsample: int) -> None:
    small = read_image_file(lfw / "Aaron_Sorkin_0001.jpg")
    large = np.asarray(Image.fromarray(small).resize((1500, 1500), Image.Resampling.BILINEAR))
    detector = HogDetector(upsample)
    recording = _Recording(detector._detector)
    detector._detector = recording
    [reference] = HogDetector(upsample).detect(small)
    [found] = detector.detect(np.ascontiguousarray(large))
    height, width = recording.scanned[0]
    assert height * width * 4**upsample <= detector.pixel_budget
    # The box comes back in the large image's coordinates: six times the small one's, up to
    # the steps of HOG's image pyramid.
    width = 6 * reference.box.width
    assert abs(found.box.width - width) < 0.15 * width
    for got, want in zip(found.box.center, reference.box.center, strict=True):
        assert abs(got - 6 * want) < 0.1 * width
    detector.detect(small)
    assert recording.scanned[-1] == small.shape[:2] or upsample == 1
