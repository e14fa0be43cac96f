"""Accuracy of the default engine on LFW View 1 and MFR2; writes docs/accuracy.md.

    .venv/bin/python benchmarks/accuracy.py [--data ../shared/data] [--workers 2]

Runs `facekey eval pairs` on LFW View 1 DevTest (threshold also taken from DevTrain) and on
MFR2, and reads the shipped calibration table (all View 1 cross-pairs) for TAR at low FMR.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facekey.calibration import shipped_calibration
from facekey.config import Settings
from facekey.engines.registry import load_engine
from facekey.evaluation.machine import machine_info
from facekey.evaluation.pair_eval import run_pair_evaluation

ROOT = Path(__file__).resolve().parents[1]


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def lfw_section(data: Path, workers: int, settings: Settings) -> list[str]:
    lfw = data / "lfw-view1"
    report = run_pair_evaluation(
        images=lfw / "images",
        pairs_file=lfw / "pairsDevTest.txt",
        train_pairs=lfw / "pairsDevTrain.txt",
        out_dir=ROOT / "out/accuracy/lfw-devtest",
        settings=settings,
        workers=workers,
    )
    tar = report["tar_at_far"]
    return [
        "## LFW View 1 DevTest (500 same + 500 different pairs)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| accuracy, threshold from DevTrain | {pct(report['accuracy_at_train_threshold'])} |",
        f"| accuracy, calibrated threshold (FMR {report['operating_fmr']:g}) | "
        f"{pct(report['accuracy'])} |",
        f"| best accuracy on DevTest itself (optimistic) | "
        f"{pct(report['accuracy_at_best_threshold'])} |",
        f"| EER | {pct(report['eer'])} |",
        f"| TAR at FAR 1e-2 | {pct(tar['1e-2'])} |",
        f"| TAR at FAR 1e-3 (below 1/500: at zero false accepts) | {pct(tar['1e-3'])} |",
        f"| failure to acquire (images) | {pct(report['failure_to_acquire_rate'])} "
        f"({report['failed_images']} of {report['images']}) |",
        "",
        f"Detectors: {' → '.join(report['detectors'])}. Full report: "
        "`out/accuracy/lfw-devtest/report.md`.",
        "",
    ]


def calibration_section(settings: Settings) -> list[str]:
    info = load_engine(settings.engine, settings).info
    table = shipped_calibration(info)
    if table is None:
        return []
    rows = [
        f"| {fmr:g} | {score:.4f} | {pct(1 - fnmr)} |"
        for score, fmr, fnmr in table.points
        if fmr in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
    ]
    return [
        "## All LFW View 1 cross-pairs (the shipped calibration table)",
        "",
        f"{table.genuine_pairs:,} genuine and {table.impostor_pairs:,} impostor pairs: every "
        "pair of the 4,992 View 1 images. These are the data the shipped calibration was fitted "
        "on, so the thresholds are in-sample.",
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
        out_dir=ROOT / "out/accuracy/mfr2",
        settings=settings,
        workers=workers,
    )
    rows = [
        f"| {name} | {s['pairs']} | {s['genuine_pairs']} / {s['impostor_pairs']} | "
        f"{pct(s['accuracy'])} | {pct(s['eer'])} | {pct(s['tar_at_far']['1e-3'])} |"
        for name, s in report["subsets"].items()
    ]
    return [
        "## MFR2 (masked faces), 27 people",
        "",
        f"All {report['pairs']} pairs: accuracy {pct(report['accuracy'])} at the calibrated "
        f"threshold (FMR {report['operating_fmr']:g}, fitted on unmasked LFW), EER "
        f"{pct(report['eer'])}, TAR@FAR 1e-3 {pct(report['tar_at_far']['1e-3'])}; failure to "
        f"acquire {pct(report['failure_to_acquire_rate'])}.",
        "",
        "| subset | pairs | genuine / impostor | accuracy | EER | TAR@FAR 1e-3 |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Subsets are small (the no-mask/no-mask subset has only a handful of genuine pairs) and "
        "TAR at FAR 1e-3 is below the impostor-count resolution: read them as indications.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    settings = Settings()
    machine = machine_info()
    lines = [
        "# facekey accuracy",
        "",
        f"Engine {settings.engine} (backend {settings.dlib_backend}); written by "
        f"`{machine['command']}` on {machine['date']} ({machine['cpu']}).",
        "",
        *lfw_section(args.data, args.workers, settings),
        *calibration_section(settings),
        *mfr2_section(args.data, args.workers, settings),
    ]
    out = ROOT / "docs/accuracy.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print(out.read_text())


if __name__ == "__main__":
    main()
