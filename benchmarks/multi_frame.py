"""What several frames per person or per probe buy; writes docs/multi-frame.md.

    .venv/bin/python benchmarks/multi_frame.py [--data ../shared/data] [--workers 2]

face-reid-0095 and its shipped unmasked table. Several templates or frames are several chances
for a stranger, so every decision here applies the union bound the server applies: with k
templates and f probe frames, a score counts at the threshold for FMR target / (k · f).

1. Enrolment templates, LFW: the people of View 1 with at least six photos enrol with their
   first k (k = 1, 2, 3, 5); their other photos are the genuine probes, every photo of every
   other View 1 person an impostor probe. TAR at the target, and the impostor rate measured at
   the same threshold.
2. Probe bursts, LFW: people with at least four photos enrol with the first; a "burst" of f of
   their other photos is fused (best score, union bound over the frames) or averaged into one
   template (read with the single-frame table).
3. The head-turn sequence (288 frames of one person): five templates chosen for quality and
   diversity (``facekey.templates.choose_diverse``) against the first frame alone, judged by how
   many of the other frames reach the threshold.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from facekey.calibration import CalibrationTable, shipped_calibration
from facekey.config import Settings
from facekey.engines.face_reid import INFO
from facekey.evaluation.datasets import image_files, labelled_images
from facekey.evaluation.embedding import embed_files
from facekey.evaluation.machine import machine_info
from facekey.templates import choose_diverse

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (1e-4, 1e-5)


def pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def embedded(paths: list[Path], workers: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(vectors, qualities, indices of the paths whose face was found)."""
    settings = Settings().model_copy(update={"engine": INFO.id})
    found = [
        (i, e) for i, e in enumerate(embed_files(paths, settings, workers=workers)) if e.template
    ]
    vectors = np.stack([e.template.vector for _, e in found if e.template is not None])
    qualities = np.array([e.template.quality for _, e in found if e.template is not None])
    return vectors, qualities, [i for i, _ in found]


def threshold(table: CalibrationTable, fmr: float) -> float:
    return table.threshold_for(max(fmr, table.min_fmr))


def enrolment_rows(
    people: dict[str, list[int]], v: np.ndarray, table: CalibrationTable
) -> list[str]:
    rich = [name for name, rows in people.items() if len(rows) >= 6]
    owner = np.empty(len(v), dtype=object)
    for name, rows in people.items():
        owner[rows] = name
    lines = []
    for k in (1, 2, 3, 5):
        cells = []
        for target in TARGETS:
            t = threshold(table, target / k)
            accepted = strangers = false = 0
            for name in rich:
                enrolled = v[people[name][:k]]
                for probe in people[name][k:]:
                    accepted += float(np.max(enrolled @ v[probe])) >= t
                others = np.flatnonzero(owner != name)
                best = (v[others] @ enrolled.T).max(axis=1)
                strangers, false = strangers + len(others), false + int(np.sum(best >= t))
            genuine = sum(len(people[n]) - k for n in rich)
            cells += [pct(accepted / genuine), f"{false / strangers:.1e}"]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    header = " | ".join(f"TAR @{t:g} | measured FMR" for t in TARGETS)
    sep = "|".join("---" for _ in range(2 * len(TARGETS) + 1))
    return [
        f"People with ≥ 6 photos: {len(rich)}; genuine probes per k: the photos beyond the k "
        "enrolled.",
        "",
        f"| templates k | {header} |",
        f"|{sep}|",
        *lines,
        "",
    ]


def burst_rows(people: dict[str, list[int]], v: np.ndarray, table: CalibrationTable) -> list[str]:
    eligible = [name for name, rows in people.items() if len(rows) >= 4]
    enrolled = np.stack([v[people[n][0]] for n in eligible])
    lines = []
    for frames in (1, 2, 3):
        cells = []
        for target in TARGETS:
            t_max, t_mean = threshold(table, target / frames), threshold(table, target)
            hits = [0, 0]
            false = [0, 0]
            comparisons = 0
            for index, name in enumerate(eligible):
                burst = v[people[name][1 : 1 + frames]]
                mean = burst.sum(axis=0)
                mean /= np.linalg.norm(mean)
                hits[0] += float(np.max(burst @ enrolled[index])) >= t_max
                hits[1] += float(mean @ enrolled[index]) >= t_mean
                others = np.delete(enrolled, index, axis=0)
                false[0] += int(np.sum((others @ burst.T).max(axis=1) >= t_max))
                false[1] += int(np.sum(others @ mean >= t_mean))
                comparisons += len(others)
            cells += [
                f"{pct(hits[0] / len(eligible))} ({false[0] / comparisons:.1e})",
                f"{pct(hits[1] / len(eligible))} ({false[1] / comparisons:.1e})",
            ]
        lines.append(f"| {frames} | " + " | ".join(cells) + " |")
    header = " | ".join(f"best frame, union bound @{t:g} | averaged @{t:g}" for t in TARGETS)
    sep = "|".join("---" for _ in range(2 * len(TARGETS) + 1))
    return [
        f"People with ≥ 4 photos: {len(eligible)}; TAR, with the impostor rate measured at the "
        "same threshold in brackets.",
        "",
        f"| probe frames f | {header} |",
        f"|{sep}|",
        *lines,
        "",
    ]


def sequence_rows(folder: Path, workers: int, table: CalibrationTable) -> list[str]:
    paths = image_files(folder)
    v, quality, _ = embedded(paths, workers)
    chosen = choose_diverse(quality.tolist(), v, 5)
    rest = np.setdiff1d(np.arange(len(v)), chosen)
    rows = []
    for name, templates in (("first frame", [0]), ("5 chosen frames", chosen)):
        for target in TARGETS:
            t = threshold(table, target / len(templates))
            reached = np.max(v[rest] @ v[templates].T, axis=1) >= t
            rows.append(f"| {name} | {target:g} | {pct(float(np.mean(reached)))} |")
    return [
        f"{len(v)} frames with a face; templates chosen: frames {sorted(int(c) for c in chosen)}.",
        "",
        "| enrolled with | FMR target | other frames reaching the threshold |",
        "|---|---|---|",
        *rows,
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    table = shipped_calibration(INFO)
    assert table is not None
    paths, labels = labelled_images(args.data / "lfw-view1" / "images")
    v, _, kept = embedded(paths, args.workers)
    people: dict[str, list[int]] = defaultdict(list)
    for row, index in enumerate(kept):
        people[labels[index]].append(row)
    machine = machine_info()
    lines = [
        "# Several frames per decision",
        "",
        f"Written by `{machine['command']}` on {machine['date']} ({machine['cpu']}); engine "
        f"{INFO.id}, its shipped unmasked table. Development data (LFW View 1, in-sample "
        "thresholds).",
        "",
        "## Enrolment: k templates per person (best score over them, N counts templates)",
        "",
        *enrolment_rows(dict(people), v, table),
        "## Probe bursts: f frames fused at the score level or averaged into one template",
        "",
        *burst_rows(dict(people), v, table),
        "Averaging the frames into one template raises strangers' scores as well: read with the "
        "single-frame table it lets through more impostors than the table states, so facekey "
        "fuses frames at the score level and counts each in the union bound.",
        "",
        "## The head-turn sequence (one person)",
        "",
        *sequence_rows(args.data / "sequences" / "head-turn", args.workers, table),
    ]
    (ROOT / "docs/multi-frame.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
