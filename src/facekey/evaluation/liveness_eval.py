"""``facekey eval liveness``: presentation-attack detection error rates (ISO/IEC 30107-3).

* APCER of an attack type: the share of its presentations accepted as live; ``apcer`` is the
  worst type's. BPCER: the share of bona fide (live) presentations rejected.
* ``bpcer_at_apcer[x]``: BPCER at the lowest threshold where every type's APCER ≤ x.
* Failure to acquire: a live sample with no face is rejected; an attack with no face is refused
  (not accepted); both are counted in ``failures_to_acquire``.

Frames mode scores every image (recursively) with the passive scorer at its calibrated
threshold. Sessions mode (``--sequences``) treats every immediate subfolder as one passive
session (frames in name order) and scores the fused session decision: only "live" accepts;
the session's fused probability draws the DET curve.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from facekey.errors import DatasetError, MissingExtra
from facekey.evaluation.datasets import image_files
from facekey.evaluation.liveness_calibration import threshold_at_apcer
from facekey.evaluation.machine import machine_info
from facekey.evaluation.metrics import det_points
from facekey.evaluation.progress import progress_bar
from facekey.imaging import read_image_file
from facekey.liveness.fusion import FUSION_VERSION, LIVE_AT
from facekey.liveness.session import LivenessChecker, score_files
from facekey.liveness.threshold import load_threshold

Scores = npt.NDArray[np.float64]
APCER_LEVELS: Final = (0.05, 0.10)


def pad_metrics(
    live: npt.ArrayLike, attacks: Mapping[str, npt.ArrayLike], threshold: float
) -> dict[str, Any]:
    """APCER per type and worst, BPCER at ``threshold``, and BPCER at APCER 5 % and 10 %."""
    live_scores = np.asarray(live, dtype=np.float64)
    attack_scores = {k: np.asarray(v, dtype=np.float64) for k, v in attacks.items()}
    per_type = {k: _accepted(v, threshold) for k, v in attack_scores.items()}
    return {
        "threshold": threshold,
        "apcer": max(per_type.values()),
        "apcer_per_type": per_type,
        "bpcer": 1.0 - _accepted(live_scores, threshold),
        "bpcer_at_apcer": {
            f"{level:.2f}": 1.0 - _accepted(live_scores, threshold_at_apcer(attack_scores, level))
            for level in APCER_LEVELS
        },
    }


def _accepted(scores: Scores, threshold: float) -> float:
    """Share of presentations with ``score >= threshold``; NaN (no face) is never accepted."""
    if scores.size == 0:
        return math.nan
    return float(np.count_nonzero(np.nan_to_num(scores, nan=-np.inf) >= threshold) / scores.size)


def attack_folders(folders: Sequence[Path]) -> dict[str, Path]:
    """Attack type name (the folder's name) → folder; names must be distinct."""
    named: dict[str, Path] = {}
    for folder in folders:
        if folder.name in named:
            raise DatasetError(f"two attack folders are named {folder.name!r}")
        named[folder.name] = folder
    return named


def _frame_scores(folder: Path, checker: LivenessChecker) -> Scores:
    paths = image_files(folder)
    if not paths:
        raise DatasetError(f"{folder} has no images")
    with progress_bar(f"frames {folder.name}", len(paths)) as advance:
        return score_files(paths, checker.passive_score, advance)


def _session_scores(folder: Path, checker: LivenessChecker) -> Scores:
    """Fused live probability of each session folder; NaN where too few frames had a face."""
    sessions = sorted(p for p in folder.iterdir() if p.is_dir())
    if not sessions:
        raise DatasetError(f"{folder} has no session subfolders")
    scores = []
    with progress_bar(f"sessions {folder.name}", len(sessions)) as advance:
        for session in sessions:
            decision = checker.check([read_image_file(p) for p in image_files(session)])
            scores.append(math.nan if "reason" in decision.evidence else decision.score)
            advance(1)
    return np.array(scores, dtype=np.float64)


def run_liveness_evaluation(
    *,
    live: Path,
    attacks: Sequence[Path],
    out_dir: Path,
    sequences: bool = False,
    checker: LivenessChecker | None = None,
) -> dict[str, Any]:
    """Score the folders, write report.json, report.md and det.png; return the report."""
    checker = checker or LivenessChecker()
    named = attack_folders(attacks)
    if sequences:
        report = _sessions_report(live, named, checker)
    else:
        report = _frames_report(live, named, checker)
    report["machine"] = machine_info()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report))
    scores = report.pop("_scores")
    _write_det(scores["live"], scores["attacks"], out_dir / "det.png", report["mode"])
    return report


def _frames_report(
    live: Path, attacks: Mapping[str, Path], checker: LivenessChecker
) -> dict[str, Any]:
    threshold = load_threshold(checker.scorer.name, checker.scorer.version)
    live_scores = _frame_scores(live, checker)
    attack_scores = {name: _frame_scores(folder, checker) for name, folder in attacks.items()}
    report = _base_report("frames", live_scores, attack_scores, threshold.threshold)
    report["failures_to_acquire"] = _fta(live_scores, attack_scores)
    report["scorer"] = {"name": checker.scorer.name, "version": checker.scorer.version}
    return report


def _sessions_report(
    live: Path, attacks: Mapping[str, Path], checker: LivenessChecker
) -> dict[str, Any]:
    live_scores = _session_scores(live, checker)
    attack_scores = {name: _session_scores(folder, checker) for name, folder in attacks.items()}
    report = _base_report("sessions", live_scores, attack_scores, LIVE_AT)
    report["failures_to_acquire"] = _fta(live_scores, attack_scores)
    report["fusion_version"] = FUSION_VERSION
    return report


def _base_report(
    mode: str, live: Scores, attacks: Mapping[str, Scores], threshold: float
) -> dict[str, Any]:
    return {
        "mode": mode,
        **pad_metrics(live, attacks, threshold),
        "samples": {"live": int(live.size), "attack": {k: int(v.size) for k, v in attacks.items()}},
        "_scores": {"live": live, "attacks": attacks},
    }


def _fta(live: Scores, attacks: Mapping[str, Scores]) -> dict[str, Any]:
    return {
        "live": int(np.isnan(live).sum()),
        "attack": {name: int(np.isnan(v).sum()) for name, v in attacks.items()},
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    """A short Markdown summary of a report."""
    lines = [
        f"# Liveness evaluation ({report['mode']})",
        "",
        f"- date: {report['machine']['date']}",
        f"- command: `{report['machine']['command']}`",
        f"- threshold: {report['threshold']:.6g}",
        f"- live samples: {report['samples']['live']}, "
        f"failures to acquire: {report['failures_to_acquire']['live']}",
        "",
        "| attack type | samples | FTA | APCER |",
        "|---|---|---|---|",
    ]
    for name, apcer in report["apcer_per_type"].items():
        samples = report["samples"]["attack"][name]
        fta = report["failures_to_acquire"]["attack"][name]
        lines.append(f"| {name} | {samples} | {fta} | {_pct(apcer)} |")
    lines += [
        "",
        f"APCER (worst type) {_pct(report['apcer'])}, BPCER {_pct(report['bpcer'])}; "
        + ", ".join(f"BPCER@APCER{k} {_pct(v)}" for k, v in report["bpcer_at_apcer"].items()),
        "",
    ]
    return "\n".join(lines)


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f} %"


def _write_det(live: Scores, attacks: Mapping[str, Scores], path: Path, mode: str) -> Path:
    """DET curves (BPCER against APCER, one per attack type) as a PNG."""
    figure_cls, canvas_cls = _matplotlib()
    figure = figure_cls(figsize=(6.4, 5.6), dpi=120)
    canvas_cls(figure)
    axes = figure.add_subplot(1, 1, 1)
    bona_fide = np.nan_to_num(live, nan=-np.inf)
    for name, scores in attacks.items():
        _, apcer, bpcer = det_points(bona_fide, np.nan_to_num(scores, nan=-np.inf))
        apcer, bpcer = np.maximum(apcer, 0.5 / scores.size), np.maximum(bpcer, 0.5 / live.size)
        axes.plot(apcer, bpcer, label=name, drawstyle="steps-post")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("APCER (attacks accepted)")
    axes.set_ylabel("BPCER (live rejected)")
    axes.set_title(f"facekey liveness DET ({mode})")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    figure.savefig(path, format="png")
    return path


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtra("DET plots need matplotlib: install facekey[eval]") from exc
    return Figure, FigureCanvasAgg
