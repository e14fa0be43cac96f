from __future__ import annotations

from pathlib import Path

import numpy as np

from facekey.config import Settings
from facekey.engines.fake import FakeEngine
from facekey.imaging import read_image_file
from facekey.pipeline import FacePipeline
from facekey.vision.detectors import make_detector


def test_fake_engine_is_deterministic_and_unit_length(lfw: Path) -> None:
    pipeline = FacePipeline(engine=FakeEngine(), detector=make_detector(["hog0"]))
    image = read_image_file(lfw / "Aaron_Sorkin_0001.jpg")
    first, second = pipeline.faces(image), pipeline.faces(image)
    assert first[0].template == second[0].template
    assert first[0].template.engine_id == "fake"
    assert abs(float(np.linalg.norm(first[0].template.vector)) - 1.0) < 1e-5


def test_fake_engine_from_settings() -> None:
    pipeline = FacePipeline.from_settings(Settings(engine="fake", detectors=("hog0",)))
    assert pipeline.engine.info.id == "fake"
