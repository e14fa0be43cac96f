"""Passive sessions built from the development data in ``../shared/data`` (for fitting and docs).

Folders written by :func:`build_dev_sessions`, ``<out>/<type>/<session>/`` (type ``live`` or an
attack type):

* ``live``: windows of consecutive NUAA live frames (``nuaa-dev/live``: a person sitting in front
  of a webcam, frames ~15 apart) and windows of the head-turn sequence (every 3rd frame);
* ``print-handheld``: windows of consecutive NUAA attack frames (printed photos held up by hand);
* ``still-moved``: one still (a NUAA live or attack frame) moved, scaled and rotated a little
  from frame to frame, as a photo or a screen waved in front of the camera;
* ``still-static``: one still with only sensor noise, as a photo on a stand.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image

from facekey.evaluation.datasets import image_files
from facekey.imaging import read_image_file
from facekey.liveness.temporal import fit_homography
from facekey.vision.types import ImageArray

NUAA_WINDOW: Final = 5
HEAD_TURN_WINDOW: Final = 8
HEAD_TURN_STEP: Final = 3
STILL_FRAMES: Final = 8
_NUAA_NAME = re.compile(r"^(\d+_\d+_\d+_\d+)_(\d+)$")


def nuaa_runs(folder: Path, window: int = NUAA_WINDOW) -> Iterator[tuple[str, list[Path]]]:
    """Non-overlapping windows of consecutive frames of each NUAA capture, by name prefix."""
    captures: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    for path in image_files(folder):
        match = _NUAA_NAME.match(path.stem)
        if match:
            captures[match.group(1)].append((int(match.group(2)), path))
    for prefix, frames in sorted(captures.items()):
        ordered = [p for _, p in sorted(frames)]
        for start in range(0, len(ordered) - window + 1, window):
            yield f"{prefix}-{start:03d}", ordered[start : start + window]


def frame_windows(
    frames: Sequence[Path], window: int = HEAD_TURN_WINDOW, step: int = HEAD_TURN_STEP
) -> Iterator[list[Path]]:
    """Non-overlapping windows of every ``step``-th frame of a sequence."""
    span = window * step
    for start in range(0, len(frames) - span + 1, span):
        yield list(frames[start : start + span : step])


def moved_still(image: ImageArray, frames: int, rng: np.random.Generator) -> list[ImageArray]:
    """``frames`` views of one still, each shifted (≤3 %), scaled (±4 %) and rotated (±3°)."""
    views = []
    height, width = image.shape[:2]
    for index in range(frames):
        phase = 2 * math.pi * index / frames + rng.uniform(0, 0.5)
        angle = math.radians(3.0 * math.sin(phase))
        scale = 1.0 + 0.04 * math.sin(1.7 * phase)
        shift = (0.03 * width * math.cos(phase), 0.03 * height * math.sin(0.8 * phase))
        views.append(_similarity(image, angle, scale, shift))
    return views


def tilted_still(
    image: ImageArray,
    frames: int,
    rng: np.random.Generator,
    axis: str = "vertical",
    degrees: float = 30.0,
) -> list[ImageArray]:
    """``frames`` views of one still as a sheet of paper rotated in perspective about a
    ``vertical`` (a "turn") or ``horizontal`` (a "look-up") axis through its centre, from 0° to
    ``degrees`` (the camera's focal length 1.2 × the image width), with small shifts (≤ 2 %)
    and scale changes (± 3 %)."""
    views = []
    for index in range(frames):
        angle = math.radians(degrees * index / max(frames - 1, 1))
        scale = 1.0 + rng.uniform(-0.03, 0.03)
        shift = (rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02))
        views.append(_perspective(image, angle, axis == "vertical", scale, shift))
    return views


def _perspective(
    image: ImageArray, angle: float, vertical: bool, scale: float, shift: tuple[float, float]
) -> ImageArray:
    """``image`` as a plane rotated by ``angle`` about its centre line, seen by a pin-hole
    camera, then scaled and shifted (fractions of the size); black outside."""
    height, width = image.shape[:2]
    focal, cx, cy = 1.2 * width, width / 2, height / 2
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    across, along = (corners[:, 0] - cx, corners[:, 1] - cy)
    if not vertical:
        across, along = along, across
    depth = focal + across * math.sin(angle)
    moved = focal * across * math.cos(angle) / depth * scale
    fixed = focal * along / depth * scale
    x, y = (moved, fixed) if vertical else (fixed, moved)
    target = np.column_stack([x + cx + shift[0] * width, y + cy + shift[1] * height])
    inverse = fit_homography(target.astype(np.float32), corners.astype(np.float32))
    coeffs = tuple(float(c) for c in (inverse / inverse[2, 2]).ravel()[:8])
    out = Image.fromarray(image).transform(
        (width, height), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR
    )
    return np.asarray(out, dtype=np.uint8)


def static_still(image: ImageArray, frames: int, rng: np.random.Generator) -> list[ImageArray]:
    """``frames`` copies of one still with sensor noise (σ = 2 grey levels)."""
    noisy = []
    for _ in range(frames):
        noise = rng.normal(0.0, 2.0, image.shape)
        noisy.append(np.clip(image + noise, 0, 255).astype(np.uint8))
    return noisy


def _similarity(
    image: ImageArray, angle: float, scale: float, shift: tuple[float, float]
) -> ImageArray:
    """``image`` rotated by ``angle`` and scaled about its centre, then shifted; black outside."""
    height, width = image.shape[:2]
    cx, cy = width / 2, height / 2
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    # inverse map: output pixel -> input pixel
    a, b = cos, sin
    d, e = -sin, cos
    ox, oy = cx + shift[0], cy + shift[1]
    coeffs = (a, b, cx - a * ox - b * oy, d, e, cy - d * ox - e * oy)
    out = Image.fromarray(image).transform(
        (width, height), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR
    )
    return np.asarray(out, dtype=np.uint8)


def _write(folder: Path, frames: Sequence[ImageArray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame-{index:02d}.jpg", quality=92)


def _copy(folder: Path, paths: Sequence[Path]) -> None:
    _write(folder, [read_image_file(p) for p in paths])


def build_dev_sessions(data: Path, out: Path, stills: int = 40, seed: int = 7) -> dict[str, int]:
    """Write the session folders described in the module docstring; counts per type."""
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = defaultdict(int)
    nuaa = data / "nuaa-dev"
    for kind, folder in (("live", "live"), ("print-handheld", "attack")):
        for name, paths in nuaa_runs(nuaa / folder):
            _copy(out / kind / f"nuaa-{name}", paths)
            counts[kind] += 1
    turns = image_files(data / "sequences" / "head-turn")
    for index, paths in enumerate(frame_windows(turns)):
        _copy(out / "live" / f"head-turn-{index:02d}", paths)
        counts["live"] += 1
    pool = image_files(nuaa / "live")[::7] + image_files(nuaa / "attack")[::7]
    picks = rng.choice(len(pool), size=min(stills, len(pool)), replace=False)
    for index in picks:
        still = read_image_file(pool[index])
        _write(out / "still-moved" / f"{pool[index].stem}", moved_still(still, STILL_FRAMES, rng))
        _write(out / "still-static" / f"{pool[index].stem}", static_still(still, STILL_FRAMES, rng))
        counts["still-moved"] += 1
        counts["still-static"] += 1
    return dict(counts)
