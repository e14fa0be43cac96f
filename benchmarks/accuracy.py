"""Accuracy of the engines on LFW View 1 and MFR2; writes docs/accuracy.md.

    .venv/bin/python benchmarks/accuracy.py [--data ../shared/data] [--workers 2]

For each engine: `facekey eval pairs` on LFW View 1 DevTest (the calibrated threshold at FMR
1e-3 and 1e-2, and the threshold taken from DevTrain), the shipped calibration table (all
View 1 cross-pairs) for TAR at low FMR, and MFR2 at the FMR 1e-3 operating point, each mask
subset at its own table's threshold. Then the masked tables (built from drawn masks) are
checked against every real masked pair of MFR2, and the mask detector against MFR2's labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from facekey.calibration import CONDITIONS, Calibrations, EngineCalibration, condition_of
from facekey.config import Settings
from facekey.engines.registry import load_engine
from facekey.evaluation.datasets import labelled_images
from facekey.evaluation.embedding import embed_files
from facekey.evaluation.machine import machine_info
from facekey.evaluation.pair_eval import run_pair_evaluation
from facekey.evaluation.pairs import NO_MASK, read_mask_labels

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("face-reid-0095", "dlib-resnet-v1")


def pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f} %"


def lfw_section(data: Path, workers: int, settings: Settings) -> list[str]:
    lfw = data / "lfw-view1"
    reports = {
        fmr: run_pair_evaluation(
            images=lfw / "images",
            pairs_file=lfw / "pairsDevTest.txt",
            train_pairs=lfw / "pairsDevTrain.txt",
            out_dir=ROOT / f"out/accuracy/{settings.engine}/lfw-devtest-{fmr:g}",
            settings=settings,
            workers=workers,
            operating_fmr=fmr,
        )
        for fmr in (1e-3, 1e-2)
    }
    report = reports[1e-3]
    tar = report["tar_at_far"]
    return [
        "### LFW View 1 DevTest (500 same + 500 different pairs)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| accuracy, calibrated threshold at FMR 1e-3 | {pct(report['accuracy'])} |",
        f"| accuracy, calibrated threshold at FMR 1e-2 | {pct(reports[1e-2]['accuracy'])} |",
        f"| accuracy, threshold from DevTrain | {pct(report['accuracy_at_train_threshold'])} |",
        f"| best accuracy on DevTest itself (optimistic) | "
        f"{pct(report['accuracy_at_best_threshold'])} |",
        f"| EER | {pct(report['eer'])} |",
        f"| TAR at FAR 1e-2 | {pct(tar['1e-2'])} |",
        f"| failure to acquire (images) | {pct(report['failure_to_acquire_rate'])} "
        f"({report['failed_images']} of {report['images']}) |",
        "",
    ]


def calibration_section(tables: EngineCalibration) -> list[str]:
    table = tables.unmasked
    rows = [
        f"| {fmr:g} | {score:.4f} | {pct(1 - fnmr)} |"
        for score, fmr, fnmr in table.points
        if fmr in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
    ]
    return [
        "### All LFW View 1 cross-pairs (the shipped unmasked table)",
        "",
        f"{table.genuine_pairs:,} genuine and {table.impostor_pairs:,} impostor pairs: every "
        "pair of the 4,992 View 1 images, the data the table was fitted on (in-sample).",
        "",
        "| FMR | threshold (cosine) | TAR |",
        "|---|---|---|",
        *rows,
        "",
    ]


def mfr2_section(data: Path, workers: int, settings: Settings) -> list[str]:
    mfr2 = data / "mfr2-dev"
    report = run_pair_evaluation(
        images=mfr2 / "images",
        pairs_file=mfr2 / "pairs.txt",
        out_dir=ROOT / f"out/accuracy/{settings.engine}/mfr2",
        settings=settings,
        workers=workers,
        operating_fmr=1e-3,
    )
    rows = [
        f"| {name} | {s['genuine_pairs']} / {s['impostor_pairs']} | {s['threshold']:.3f} "
        f"({s['threshold_from']}) | {pct(s['fnmr'])} | {pct(s['fmr'])} | "
        f"{pct(s.get('fnmr_detected'))} / {pct(s.get('fmr_detected'))} | {pct(s['eer'])} |"
        for name, s in report["subsets"].items()
    ]
    detector = report.get("mask_detector", {})
    return [
        "### MFR2 `pairs.txt` (27 people, masked and unmasked), operating point FMR 1e-3",
        "",
        f"All {report['pairs']} pairs: accuracy {pct(report['accuracy'])}, EER "
        f"{pct(report['eer'])}; failure to acquire {pct(report['failure_to_acquire_rate'])}. "
        f"Mask detector: {pct(detector.get('masked_detected'))} of "
        f"{detector.get('masked_images')} masked images detected, "
        f"{pct(detector.get('unmasked_flagged'))} of {detector.get('unmasked_images')} "
        "unmasked ones flagged.",
        "",
        "| subset | genuine / impostor | threshold | FNMR | FMR | FNMR / FMR, table by detector "
        "| EER |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def masked_tables_section(
    data: Path, workers: int, settings: Settings, tables: EngineCalibration
) -> list[str]:
    """Real masked strangers of MFR2 (all cross pairs) at the drawn-mask tables' thresholds."""
    images = data / "mfr2-dev" / "images"
    labels = read_mask_labels(data / "mfr2-dev" / "mask_labels.txt", images)
    paths, people = labelled_images(images)
    embedded = embed_files(paths, settings, workers=workers)
    kept = [(e, p) for e, p in zip(embedded, people, strict=True) if e.template is not None]
    vectors = np.stack([e.template.vector for e, _ in kept if e.template is not None])
    masked = np.array([labels[e.path] != NO_MASK for e, _ in kept])
    names = np.array([p for _, p in kept])
    scores = vectors @ vectors.T
    upper = np.triu(np.ones_like(scores, dtype=bool), k=1)
    rows = []
    for condition in CONDITIONS:
        if not tables.has(condition):
            continue
        wanted = np.array([[condition_of(a, b) == condition for b in masked] for a in masked])
        impostor = scores[upper & wanted & (names[:, None] != names[None, :])]
        genuine = scores[upper & wanted & (names[:, None] == names[None, :])]
        for fmr in (1e-2, 1e-3):
            threshold = tables.table(condition).threshold_for(fmr)
            rows.append(
                f"| {condition} | {fmr:g} | {threshold:.3f} | {genuine.size} / {impostor.size} | "
                f"{pct(float(np.mean(impostor >= threshold)), 3)} | "
                f"{pct(float(np.mean(genuine < threshold)))} |"
            )
    return [
        "### The masked tables against real masks (every cross pair of MFR2's 134 images)",
        "",
        "The masked tables come from LFW faces under drawn masks (`facekey calibrate "
        "--synthetic-masks`). At their thresholds, real masked strangers must not match more "
        "often than the table says:",
        "",
        "| condition | table FMR | threshold | genuine / impostor pairs | real FMR | real FNMR |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def engine_section(data: Path, workers: int, engine: str) -> list[str]:
    settings = Settings().model_copy(update={"engine": engine})
    info = load_engine(engine, settings).info
    tables = Calibrations(settings.data_dir / "calibrations").for_engine(info)
    lines: list[Any] = [f"## {engine}", "", *lfw_section(data, workers, settings)]
    if tables is not None:
        lines += calibration_section(tables)
    lines += mfr2_section(data, workers, settings)
    if tables is not None and len(tables.tables) > 1:
        lines += masked_tables_section(data, workers, settings, tables)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engine", action="append", help="Only these engines.")
    args = parser.parse_args()
    machine = machine_info()
    lines = [
        "# facekey accuracy",
        "",
        f"Written by `{machine['command']}` on {machine['date']} ({machine['cpu']}). "
        "Development data: every threshold here was fitted on LFW View 1 (in-sample); the "
        "reported targets are measured again on people held out from development.",
        "",
    ]
    for engine in args.engine or ENGINES:
        lines += engine_section(args.data, args.workers, engine)
    lines += [
        "Alignment alternatives: [alignment.md](alignment.md); templates and probes of several "
        "frames: [multi-frame.md](multi-frame.md).",
        "",
    ]
    out = ROOT / "docs/accuracy.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print(out.read_text())


if __name__ == "__main__":
    main()
