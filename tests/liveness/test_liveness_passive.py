"""MiniFASNet pair: real frames on the right side of the packaged threshold; pinned sha256."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facekey.errors import ModelIntegrityError
from facekey.imaging import read_image_file
from facekey.liveness.passive import (
    LOG_ODDS_CLIP,
    MINIFASNET_MODELS,
    MiniFasNetPair,
    ModelSpec,
    PassiveScorer,
    crop_box,
    live_probability,
    log_odds,
    sigmoid,
)
from facekey.liveness.session import LivenessChecker
from facekey.liveness.threshold import load_threshold
from facekey.vision.types import Box

FIXTURES = Path(__file__).parents[1] / "fixtures" / "liveness"


@pytest.fixture(scope="module")
def checker() -> LivenessChecker:
    return LivenessChecker()


def test_pair_is_a_passive_scorer() -> None:
    assert isinstance(MiniFasNetPair(), PassiveScorer)


@pytest.mark.parametrize(
    ("name", "live"),
    [
        ("nuaa-live-0001_00_00_01_0.jpg", True),
        ("pad-image_T1.jpg", True),
        ("nuaa-attack-0001_00_00_01_0.jpg", False),
        ("pad-image_F1.jpg", False),
    ],
)
def test_real_frames_fall_on_the_right_side(
    checker: LivenessChecker, name: str, live: bool
) -> None:
    """Attacks fall below the shipped threshold; live faces score high (the threshold is set
    for security, so a live frame may still fall short of it: bursts and challenges decide)."""
    threshold = load_threshold(checker.scorer.name, checker.scorer.version).threshold
    score = checker.passive_score(read_image_file(FIXTURES / name))
    assert 0.0 <= score <= 1.0
    if live:
        assert score > 0.9
    else:
        assert score < min(threshold, 0.05)


def test_crop_is_scaled_about_the_centre_and_shifted_inside() -> None:
    assert crop_box(Box(100, 100, 200, 200), 2.0, 640, 480) == (50, 50, 250, 250)
    left, top, right, _ = crop_box(Box(0, 0, 100, 100), 2.7, 640, 480)
    assert (left, top) == (0, 0) and right == pytest.approx(270, abs=1)
    # too big to fit: the scale shrinks to the image
    assert crop_box(Box(200, 100, 400, 300), 4.0, 640, 480)[1::2] == (0, 479)


def test_live_probability_is_softmax_index_one() -> None:
    assert live_probability(np.array([0.0, 0.0, 0.0], dtype=np.float32)) == pytest.approx(1 / 3)
    assert live_probability(np.array([0.0, 10.0, 0.0], dtype=np.float32)) > 0.99


def test_tampered_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fakepkg"
    folder = package / "models"
    folder.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    spec = MINIFASNET_MODELS[0]
    source = Path(__file__).parents[2] / "src" / "facekey" / "models" / "minifasnet" / spec.file
    shutil.copyfile(source, folder / spec.file)
    with (folder / spec.file).open("ab") as handle:
        handle.write(b"\0")
    monkeypatch.syspath_prepend(str(tmp_path))
    scorer = MiniFasNetPair(models=(spec,), package="fakepkg", folder=("models",))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        scorer.load()


def test_wrong_pin_is_refused() -> None:
    spec = MINIFASNET_MODELS[1]
    scorer = MiniFasNetPair(models=(ModelSpec(spec.file, spec.scale, "0" * 64),))
    with pytest.raises(ModelIntegrityError):
        scorer.score(np.zeros((120, 120, 3), dtype=np.uint8), Box(40, 40, 80, 80))


def test_batch_scores_equal_single_scores(checker: LivenessChecker) -> None:
    images = [read_image_file(FIXTURES / n) for n in ("pad-image_T1.jpg", "pad-image_F1.jpg")]
    faces = [(image, checker.detector.detect(image)[0].box) for image in images]
    pair = MiniFasNetPair()
    batch = pair.score_many(faces)
    assert batch == pytest.approx([pair.score(image, box) for image, box in faces], abs=1e-6)
    assert batch[0] > 0.9 and batch[1] < 0.1


def test_the_pair_averages_log_odds() -> None:
    assert sigmoid(log_odds(0.8)) == pytest.approx(0.8)
    assert log_odds(1.0) == LOG_ODDS_CLIP and log_odds(0.0) == -LOG_ODDS_CLIP
