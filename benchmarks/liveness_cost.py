"""Per-frame liveness cost on one core: detector + Face Mesh + passive pair, and the pair alone.

taskset -c 0 .venv/bin/python benchmarks/liveness_cost.py ../shared/data/nuaa-dev/live
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from facekey.evaluation.datasets import image_files
from facekey.imaging import read_image_file
from facekey.liveness.session import LivenessChecker

LIMIT = 100


def main() -> None:
    checker = LivenessChecker()
    images = [read_image_file(p) for p in image_files(Path(sys.argv[1]))[:LIMIT]]
    checker.observe(images[0])  # load every model before timing
    frame_ms, passive_ms = [], []
    for image in images:
        start = time.perf_counter()
        observation = checker.observe(image)
        frame_ms.append(1000 * (time.perf_counter() - start))
        if observation is not None:
            start = time.perf_counter()
            checker.scorer.score(image, observation.box)
            passive_ms.append(1000 * (time.perf_counter() - start))
    frame, passive = statistics.median(frame_ms), statistics.median(passive_ms)
    print(f"detector {checker.detector.name} + mesh + passive: median {frame:.1f} ms")
    print(f"passive pair alone: median {passive:.1f} ms ({len(passive_ms)} faces)")


if __name__ == "__main__":
    main()
