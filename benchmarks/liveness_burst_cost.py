"""CPU cost of deciding a 20-frame passive burst, per stage, on one core; writes
docs/liveness-cost.md.

    taskset -c 1 .venv/bin/python benchmarks/liveness_burst_cost.py /tmp/lv-src

``/tmp/lv-src`` is written by ``facekey liveness dev-sources ../shared/data --out /tmp/lv-src``:
the bursts are 20 consecutive live frames from each video source (frames scaled to ≤ 640 px,
as a terminal sends them), every 30th frame a new burst. CPU time (``time.process_time``), the
models loaded and warmed up first; medians over the bursts. The burst path
(:meth:`LivenessChecker.check`) is compared with the per-frame path it replaced (detector,
Face Mesh and the passive pair on every frame).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from facekey.evaluation.datasets import image_files
from facekey.evaluation.machine import machine_info
from facekey.imaging import read_image_file
from facekey.liveness.fusion import decide_burst
from facekey.liveness.session import LivenessChecker, pick_frames, sharpness
from facekey.vision.types import ImageArray

VIDEO_SOURCES = ("apfol", "lestari", "tranvanluyt", "wolf", "zalo", "zubair")
BURST = 20
EVERY = 30
PER_SOURCE = 4
OUT = Path(__file__).parents[1] / "docs" / "liveness-cost.md"
NAME = Path(__file__).name
T = TypeVar("T")


def timed(costs: dict[str, list[float]], stage: str, work: Callable[[], T]) -> T:
    start = time.process_time()
    result = work()
    costs.setdefault(stage, []).append(1000 * (time.process_time() - start))
    return result


def bursts(root: Path) -> list[list[Path]]:
    found = []
    for source in VIDEO_SOURCES:
        frames = image_files(root / source / "live")
        starts = range(0, len(frames) - BURST, EVERY)
        found += [frames[s : s + BURST] for s in list(starts)[:PER_SOURCE]]
    return found


def staged(
    checker: LivenessChecker, frames: list[ImageArray], costs: dict[str, list[float]]
) -> None:
    """The steps of :meth:`LivenessChecker.check`, one timer each."""
    tracked = timed(
        costs, "detect once + track (Face Mesh on every frame)", lambda: checker.track(frames)
    )
    qualities = timed(
        costs,
        "frame quality (sharpness) and choice",
        lambda: [
            sharpness(f, o.box) if o else float("nan") for f, o in zip(frames, tracked, strict=True)
        ],
    )
    chosen = pick_frames(qualities)
    faces = [(frames[i], tracked[i].box) for i in chosen]  # type: ignore[union-attr]
    timed(
        costs,
        f"passive pair on {len(chosen)} frames (one batch per model)",
        lambda: checker.scorer_many(faces),
    )
    observed = checker.observe_burst(frames)  # same result, to fuse (not timed twice)
    seen = [o for o in observed if o is not None]
    timed(
        costs,
        "fusion (temporal features; photometric only when it can veto)",
        lambda: decide_burst(frames, seen, checker.operating, relocate=checker._relocate),
    )
    stages = [k for k in costs if not k.startswith("total")]
    costs.setdefault("total (sum of the stages)", []).append(sum(costs[k][-1] for k in stages))


def main() -> None:
    root = Path(sys.argv[1])
    checker = LivenessChecker()
    selected = bursts(root)
    warm = [read_image_file(p) for p in selected[0]]
    checker.check(warm)
    costs: dict[str, list[float]] = {}
    whole: list[float] = []
    old: list[float] = []
    for paths in selected:
        frames = [read_image_file(p) for p in paths]
        staged(checker, frames, costs)
        start = time.process_time()
        checker.check(frames)
        whole.append(1000 * (time.process_time() - start))
        start = time.process_time()
        for frame in frames:
            checker.observe(frame)
        old.append(1000 * (time.process_time() - start))
    write(costs, whole, old, len(selected))


def write(costs: dict[str, list[float]], whole: list[float], old: list[float], count: int) -> None:
    info = machine_info()
    lines = [
        "# Passive burst cost (20 frames, one core)",
        "",
        f"- date: {info['date']}",
        f"- machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}",
        f"- command: `taskset -c 1 .venv/bin/python benchmarks/{NAME} {sys.argv[1]}`",
        f"- data: {count} bursts of {BURST} consecutive live frames from the pad-dev videos "
        f"({', '.join(VIDEO_SOURCES)}), frames scaled to ≤ 640 px; CPU time, medians",
        "",
        "| stage | median ms | 90th pct ms |",
        "|---|---|---|",
    ]
    for stage, values in costs.items():
        lines.append(f"| {stage} | {statistics.median(values):.1f} | {_p90(values):.1f} |")
    lines += [
        f"| `LivenessChecker.check` as called (all stages) | {statistics.median(whole):.1f} "
        f"| {_p90(whole):.1f} |",
        f"| before: detector + Face Mesh + passive pair on every frame | "
        f"{statistics.median(old):.1f} | {_p90(old):.1f} |",
        "",
        "JPEG decoding (≈ 1–3 ms a frame at 640 px) and the session flow's own work (the",
        "recognition engine's same-face check on every frame) are not included.",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
