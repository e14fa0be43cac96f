"""Face Mesh on real images (fixtures in tests/fixtures/blazeface, see SOURCE.md there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facekey.vision.blazeface import BlazeFaceDetector
from facekey.vision.mesh import (
    FaceMesh,
    MeshResult,
    Roi,
    eye_aspect_ratio,
    face_roi,
    head_pose,
)
from facekey.vision.types import Box, ImageArray

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "blazeface"


def load(name: str) -> ImageArray:
    with Image.open(FIXTURES / name) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    return BlazeFaceDetector("short")


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    return FaceMesh()


def run(detector: BlazeFaceDetector, mesh: FaceMesh, image: ImageArray) -> MeshResult:
    face = detector.detect(image)[0]
    return mesh.landmarks(image, face.box, face.keypoints)


@pytest.mark.parametrize(
    ("name", "min_presence"), [("Aaron_Peirsol_0001.jpg", 0.9), ("AdrianDunbar_0001.png", 0.5)]
)
def test_points_cover_the_face(
    detector: BlazeFaceDetector, mesh: FaceMesh, name: str, min_presence: float
) -> None:
    image = load(name)
    face = detector.detect(image)[0]
    result = mesh.landmarks(image, face.box, face.keypoints)
    assert result.points.shape == (468, 3) and result.points.dtype == np.float32
    assert result.presence > min_presence  # mask and dark glasses lower it (~0.7)
    margin = 0.25 * face.box.width
    xs, ys = result.points[:, 0], result.points[:, 1]
    assert xs.min() > face.box.left - margin and xs.max() < face.box.right + margin
    assert ys.min() > face.box.top - 2 * margin and ys.max() < face.box.bottom + margin
    assert face.box.iou(result.box) > 0.4


def test_box_only_roi_gives_same_points(detector: BlazeFaceDetector, mesh: FaceMesh) -> None:
    image = load("Aaron_Peirsol_0001.jpg")
    face = detector.detect(image)[0]
    levelled = mesh.landmarks(image, face.box, face.keypoints).points
    plain = mesh.landmarks(image, face.box).points
    assert float(np.abs(levelled[:, :2] - plain[:, :2]).mean()) < 3.0


def test_frontal_face_pose_and_open_eyes(detector: BlazeFaceDetector, mesh: FaceMesh) -> None:
    result = run(detector, mesh, load("Aaron_Peirsol_0001.jpg"))
    yaw, pitch, roll = result.head_pose()
    assert abs(yaw) < 20 and abs(pitch) < 25 and abs(roll) < 10
    left, right = result.eye_aspect_ratio()
    assert 0.15 < left < 0.6 and 0.15 < right < 0.6


def test_turned_head_yaw_sign_flips_with_mirror(
    detector: BlazeFaceDetector, mesh: FaceMesh
) -> None:
    image = load("left_face.jpeg")  # the face points to the image's left
    yaw, _, _ = run(detector, mesh, image).head_pose()
    mirrored_yaw, _, _ = run(detector, mesh, np.ascontiguousarray(image[:, ::-1])).head_pose()
    assert yaw < -20 and mirrored_yaw > 20


def test_rotated_image_gives_roll(detector: BlazeFaceDetector, mesh: FaceMesh) -> None:
    upright = load("Aaron_Peirsol_0001.jpg")
    # PIL rotates counter-clockwise on screen, so the subject's left eye (image right) rises
    tilted = np.asarray(Image.fromarray(upright).rotate(25, resample=Image.Resampling.BILINEAR))
    _, _, roll = run(detector, mesh, tilted).head_pose()
    assert -35 < roll < -15


def test_no_face_in_noise_has_low_presence(mesh: FaceMesh) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (250, 250, 3), dtype=np.uint8)
    result = mesh.landmarks(noise, Box(60, 60, 190, 190))
    assert result.presence < 0.5


def test_roi_follows_the_eye_line() -> None:
    box = Box(0, 0, 100, 80)
    keypoints = np.array([[30, 40], [70, 80]], dtype=np.float32)
    roi = face_roi(box, keypoints)
    assert roi.size == pytest.approx(150) and (roi.cx, roi.cy) == (50, 40)
    assert np.degrees(roi.angle) == pytest.approx(45)
    corner = Roi(10, 20, 192).affine(192) @ np.array([0, 0, 1], dtype=np.float32)
    assert corner == pytest.approx([10 - 96, 20 - 96])


def test_pure_pose_and_blink_functions() -> None:
    points = np.zeros((468, 3), dtype=np.float32)
    points[33], points[263] = (0, 0, 0), (10, 0, 0)  # eye outer corners, level
    points[10], points[152] = (5, -10, 0), (5, 10, 0)  # forehead, chin
    assert head_pose(points) == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)
    points[263, 2] = 10.0  # the subject's left eye farther away: turned to their left
    assert head_pose(points)[0] == pytest.approx(45.0, abs=1e-4)
    points[133], points[159], points[145] = (3, 0, 0), (1.5, -0.5, 0), (1.5, 0.5, 0)
    points[362], points[386], points[374] = (7, 0, 0), (8.5, -0.1, 0), (8.5, 0.1, 0)
    left, right = eye_aspect_ratio(points)
    assert right == pytest.approx(1 / 3) and left < 0.1
