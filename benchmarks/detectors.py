"""Detector cost and misses, alone and in fallback chains; writes docs/detectors.md.

    .venv/bin/python benchmarks/detectors.py --lfw ../shared/data/lfw-view1/images \
        --masked ../shared/data/mfr2-dev/images [--limit 1000]

One core, one process. For every image the cost of a chain is the sum of the detectors it
had to run before one found a face; a miss by all of them is a failure to acquire.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from facekey.evaluation.bench import sample_images
from facekey.evaluation.datasets import image_files
from facekey.evaluation.machine import machine_info
from facekey.imaging import read_image_file
from facekey.vision.detectors import make_detector

DETECTORS = ("hog0", "hog1", "blazeface-short", "blazeface-full")
CHAINS = (
    ("hog0",),
    ("blazeface-short",),
    ("hog0", "hog1"),
    ("hog0", "blazeface-short"),
    ("hog0", "blazeface-short", "hog1"),
    ("blazeface-short", "hog0"),
    ("blazeface-short", "hog0", "hog1"),
)


def measure(paths: list[Path]) -> dict[str, list[tuple[float, bool]]]:
    """Per detector, per image: (ms, found)."""
    detectors = {name: make_detector([name]) for name in DETECTORS}
    images = [read_image_file(p) for p in paths]
    results: dict[str, list[tuple[float, bool]]] = {name: [] for name in DETECTORS}
    for name, detector in detectors.items():
        detector.detect(images[0])  # warm-up
        for image in images:
            start = time.perf_counter()
            found = bool(detector.detect(image))
            results[name].append(((time.perf_counter() - start) * 1000.0, found))
    return results


def chain_rows(results: dict[str, list[tuple[float, bool]]], n: int) -> list[str]:
    rows = []
    for chain in CHAINS:
        costs, misses = [], 0
        for i in range(n):
            cost, found = 0.0, False
            for name in chain:
                ms, hit = results[name][i]
                cost += ms
                if hit:
                    found = True
                    break
            costs.append(cost)
            misses += not found
        rows.append(
            f"| {' → '.join(chain)} | {statistics.median(costs):.1f} | "
            f"{statistics.mean(costs):.1f} | {misses} | {100 * misses / n:.2f} % |"
        )
    return rows


def detector_rows(results: dict[str, list[tuple[float, bool]]], n: int) -> list[str]:
    rows = []
    for name, values in results.items():
        misses = sum(not hit for _, hit in values)
        rows.append(
            f"| {name} | {statistics.median(ms for ms, _ in values):.1f} | {misses} | "
            f"{100 * misses / n:.2f} % |"
        )
    return rows


def section(title: str, folder: Path, paths: list[Path]) -> list[str]:
    results = measure(paths)
    n = len(paths)
    return [
        f"## {title}",
        "",
        f"{n} images from `{folder}`.",
        "",
        "| detector | median ms | misses | miss rate |",
        "|---|---|---|---|",
        *detector_rows(results, n),
        "",
        "| chain | median ms | mean ms | failures to acquire | FTA rate |",
        "|---|---|---|---|---|",
        *chain_rows(results, n),
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", type=Path, required=True)
    parser.add_argument("--masked", type=Path)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("docs/detectors.md"))
    args = parser.parse_args()
    machine = machine_info()
    lines = [
        "# Face detectors: cost, misses and the fallback order",
        "",
        f"- date: {machine['date']}; command: `{machine['command']}`",
        f"- machine: {machine['cpu']}, {machine['cores']} cores; one process, one thread",
        "",
        *section("LFW (250×250)", args.lfw, sample_images(args.lfw, args.limit)),
    ]
    if args.masked:
        lines += section(
            "MFR2, masked and unmasked (160×160)", args.masked, image_files(args.masked)
        )
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
