"""How planar a head movement looks to the photometric check, on real and tilted-photo bursts.

    .venv/bin/python benchmarks/liveness_photometric.py [--data ../shared/data] [--stills 12]

For each burst, the two frames whose mesh pose differs most are aligned by a homography refined
on the pixels, and their agreement (correlation) is measured; a plane (photo, screen) agrees
almost perfectly, a real head does not. Prints, per kind of burst, how many moved their pose by
at least the check's minimum and the agreement percentiles (docs/liveness.md quotes them).
"""

from __future__ import annotations

import argparse
import functools
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from facekey.evaluation.datasets import image_files
from facekey.evaluation.liveness_sessions import nuaa_runs, tilted_still
from facekey.imaging import read_image_file
from facekey.liveness.photometric import MIN_POSE_CHANGE, most_turned_pair, planar_agreement
from facekey.liveness.session import LivenessChecker
from facekey.vision.types import ImageArray

ROOT = Path(__file__).resolve().parents[1]
Job = tuple[str, Callable[[], list[ImageArray]]]


class _Files:
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __call__(self) -> list[ImageArray]:
        return [read_image_file(p) for p in self.paths]


class _Tilted:
    def __init__(self, path: Path, axis: str, seed: int, degrees: float) -> None:
        self.path, self.axis, self.seed, self.degrees = path, axis, seed, degrees

    def __call__(self) -> list[ImageArray]:
        image = read_image_file(self.path)
        rng = np.random.default_rng(self.seed)
        return tilted_still(image, 8, rng, self.axis, self.degrees)


@functools.cache
def _checker() -> LivenessChecker:
    """One checker (detector, mesh, passive models) per worker process."""
    return LivenessChecker()


def measure(job: Job) -> tuple[str, float | None, float | None]:
    """(kind, pose change, agreement) of one burst; None when a frame has no face."""
    kind, make = job
    checker = _checker()
    frames = make()
    observations = [checker.observe(frame) for frame in frames]
    if any(o is None for o in observations):
        return kind, None, None
    points = [o.points for o in observations if o is not None]
    first, second, change = most_turned_pair(points)
    agreement = planar_agreement(frames[first], points[first], frames[second], points[second])
    return kind, change, agreement


def jobs(data: Path, stills: int) -> Iterator[Job]:
    rng = random.Random(3)
    lfw = image_files(data / "lfw-view1/images")
    rng.shuffle(lfw)
    nuaa = image_files(data / "nuaa-dev/live")[::9] + image_files(data / "nuaa-dev/attack")[::9]
    for seed, path in enumerate(lfw[:stills] + nuaa[:stills]):
        for degrees in (30, 60):
            for axis in ("vertical", "horizontal"):
                yield f"tilted 0→{degrees}° ({axis})", _Tilted(path, axis, seed, degrees)
    turns = image_files(data / "sequences/head-turn")
    for step in (3, 4):
        for start in range(0, len(turns) - 8 * step + 1, 12):
            yield "real head turn", _Files(turns[start : start + 8 * step : step])
    for _, paths in list(nuaa_runs(data / "nuaa-dev/live"))[::4]:
        yield "NUAA live", _Files(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--stills", type=int, default=12)
    args = parser.parse_args()
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(measure, list(jobs(args.data, args.stills)), chunksize=2))
    print(f"| bursts | with ≥ {MIN_POSE_CHANGE}° | agreement 10th / 50th / 90th pct, max |")
    print("|---|---|---|")
    for kind in sorted({kind for kind, _, _ in results}):
        rows = [(c, a) for k, c, a in results if k == kind]
        moved = [a for c, a in rows if c is not None and a is not None and c >= MIN_POSE_CHANGE]
        stats = (
            " / ".join(f"{q:.3f}" for q in np.percentile(moved, [10, 50, 90]))
            + f", max {max(moved):.3f}"
            if moved
            else "–"
        )
        print(f"| {kind} | {len(moved)} of {len(rows)} | {stats} |")


if __name__ == "__main__":
    main()
