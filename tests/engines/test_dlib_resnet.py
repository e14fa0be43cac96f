"""The default engine on real faces: both backends agree, people are told apart."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from facekey.config import Settings
from facekey.engines.dlib_resnet import DlibResnetEngine
from facekey.imaging import read_image_file
from facekey.pipeline import FacePipeline, main_face
from facekey.templates import Template

PEOPLE = ("Aaron_Peirsol", "Aaron_Sorkin", "Abdel_Nasser_Assidi")


def _template(pipeline: FacePipeline, path: Path) -> Template:
    image = read_image_file(path)
    return main_face(pipeline.faces(image), image.shape).template


@pytest.fixture(scope="module")
def templates(pipeline: FacePipeline, lfw: Path) -> dict[tuple[str, int], Template]:
    return {(p, i): _template(pipeline, lfw / f"{p}_000{i}.jpg") for p in PEOPLE for i in (1, 2)}


def test_same_person_scores_above_every_stranger(
    templates: dict[tuple[str, int], Template],
) -> None:
    for person in PEOPLE:
        genuine = templates[(person, 1)].similarity(templates[(person, 2)])
        strangers = [
            templates[(person, 1)].similarity(templates[(other, i)])
            for other in PEOPLE
            if other != person
            for i in (1, 2)
        ]
        assert genuine > max(strangers), person


def test_backends_agree_on_fixture_chips(
    pipeline: FacePipeline, dlib_engine: DlibResnetEngine, lfw: Path
) -> None:
    landmarker = pipeline.landmarker
    chips = []
    for path in sorted(lfw.glob("*.jpg")):
        image = read_image_file(path)
        for detection in pipeline.detector.detect(image):
            chips.append(dlib_engine.align(image, landmarker.locate(image, detection)))
    batch = np.stack(chips)
    reference = DlibResnetEngine(backend="dlib").raw_descriptors(batch)
    ours = dlib_engine.raw_descriptors(batch)
    assert len(batch) >= 10
    assert float(np.abs(ours - reference).max()) <= 1e-5


def test_backends_share_engine_identity(dlib_engine: DlibResnetEngine) -> None:
    assert DlibResnetEngine(backend="dlib").info == dlib_engine.info


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend"):
        DlibResnetEngine(backend="cuda")  # type: ignore[arg-type]


def test_cached_model_loads_fast(settings: Settings, dlib_engine: DlibResnetEngine) -> None:
    # The session fixture already converted the model; this load hits the cache.
    start = time.perf_counter()
    DlibResnetEngine(backend="onnx", cache_dir=settings.models_dir / "converted")
    assert time.perf_counter() - start < 5.0  # generous: the target (0.5 s) is benchmarked


def test_embed_rejects_wrong_chip_shape(dlib_engine: DlibResnetEngine) -> None:
    with pytest.raises(ValueError, match="150"):
        dlib_engine.embed(np.zeros((1, 112, 112, 3), dtype=np.uint8))


def test_empty_batch(dlib_engine: DlibResnetEngine) -> None:
    assert dlib_engine.embed(np.zeros((0, 150, 150, 3), dtype=np.uint8)).shape == (0, 128)
