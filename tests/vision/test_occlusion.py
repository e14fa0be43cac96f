"""The mask detector on real faces, and the enrolment gate that uses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facekey.evaluation.synthetic_masks import STYLES, draw_mask
from facekey.imaging import read_image_file
from facekey.pipeline import Face, FacePipeline, main_face
from facekey.vision.occlusion import MASK_MODEL, mask_features, mask_probability
from facekey.vision.quality import QualityPolicy


def _face(pipeline: FacePipeline, path: Path) -> tuple[np.ndarray, Face]:
    image = read_image_file(path)
    return image, main_face(pipeline.faces(image), image.shape)


def test_a_real_mask_is_seen_and_a_bare_face_is_not(
    reid_pipeline: FacePipeline, fixtures: Path
) -> None:
    _, masked = _face(reid_pipeline, fixtures / "mfr2" / "AdrianDunbar_0001.png")
    _, bare = _face(reid_pipeline, fixtures / "mfr2" / "AdrianDunbar_0002.png")
    assert masked.quality.masked and masked.quality.mask_probability > 0.9
    assert not bare.quality.masked and bare.quality.mask_probability < 0.1


def test_unmasked_lfw_faces_are_not_flagged(reid_pipeline: FacePipeline, lfw: Path) -> None:
    for path in sorted(lfw.glob("*.jpg")):
        _, face = _face(reid_pipeline, path)
        assert not face.quality.masked, path.name


@pytest.mark.parametrize("style", STYLES, ids=[s.name for s in STYLES])
def test_drawn_masks_of_every_style_are_seen(
    reid_pipeline: FacePipeline, lfw: Path, style: object
) -> None:
    image, face = _face(reid_pipeline, lfw / "Aaron_Sorkin_0001.jpg")
    covered = draw_mask(image, face.landmarks, face.detection, style)  # type: ignore[arg-type]
    probability = mask_probability(covered, face.landmarks, face.detection)
    assert probability >= MASK_MODEL.threshold, style


def test_features_are_finite_on_blank_and_extreme_chips() -> None:
    for value in (0, 255):
        chip = np.full((128, 128, 3), value, dtype=np.uint8)
        features = mask_features(chip)
        assert features.shape == (len(MASK_MODEL.weights),)
        assert np.isfinite(features).all()
        assert 0.0 <= MASK_MODEL.probability(features) <= 1.0


def test_enrolment_gate_refuses_a_mask(reid_pipeline: FacePipeline, fixtures: Path) -> None:
    _, masked = _face(reid_pipeline, fixtures / "mfr2" / "AdrianDunbar_0001.png")
    assert "face covered by a mask" in QualityPolicy().problems(masked.quality)
    assert "face covered by a mask" not in QualityPolicy(allow_masks=True).problems(masked.quality)
