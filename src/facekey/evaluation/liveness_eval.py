"""``facekey eval liveness``: presentation-attack detection error rates (ISO/IEC 30107-3).

* APCER of an attack type: the share of its presentations accepted as live; ``apcer`` is the
  worst type's. BPCER: the share of bona fide (live) presentations not accepted.
* ``bpcer_at_apcer[x]``: BPCER at the lowest threshold where every type's APCER ≤ x.
* Failure to acquire: a live sample with no face is rejected; an attack with no face is refused
  (not accepted); both are counted in ``failures_to_acquire``.

Frames mode scores every image (recursively) with the passive scorer at its shipped threshold.
Sessions mode (``--sequences``) treats every immediate subfolder as one passive burst (frames in
name order) decided by the shipped fusion: only "live" accepts; ``outcomes`` also counts the
inconclusive bursts (a challenge at checkout) and the spoof ones. The bursts' fused passive
score draws the DET curve (still or planar bursts, which are never live, count as −∞).

With ``--sources ROOT`` (``ROOT/<source>/live`` and ``ROOT/<source>/<attack type>``) the report
adds ``per_source`` and, with ``--loso``, the leave-one-source-out protocol
(:mod:`facekey.evaluation.liveness_loso`).
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
from facekey.evaluation.liveness_loso import (
    SideScores,
    SourceScores,
    evaluate_at,
    fit_operating,
    leave_one_source_out,
    summary,
)
from facekey.evaluation.machine import machine_info
from facekey.evaluation.metrics import det_points
from facekey.evaluation.progress import progress_bar
from facekey.imaging import read_image_file
from facekey.liveness.fusion import FUSION_VERSION, Operating
from facekey.liveness.session import LivenessChecker, score_files

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


def _frame_scores(folder: Path, checker: LivenessChecker) -> SideScores:
    paths = image_files(folder)
    if not paths:
        raise DatasetError(f"{folder} has no images")
    with progress_bar(f"frames {folder.name}", len(paths)) as advance:
        return SideScores.plain(score_files(paths, checker.passive_score, advance))


def _session_scores(folder: Path, checker: LivenessChecker) -> SideScores:
    """Fused passive score of each session folder (NaN where too few frames had a face), and
    which sessions are gated or vetoed."""
    sessions = sorted(p for p in folder.iterdir() if p.is_dir())
    if not sessions:
        raise DatasetError(f"{folder} has no session subfolders")
    scores, gated, vetoed = [], [], []
    with progress_bar(f"sessions {folder.name}", len(sessions)) as advance:
        for session in sessions:
            frames = [read_image_file(p) for p in image_files(session)]
            evidence = checker.check(frames).evidence
            scores.append(float(evidence.get("passive_score", math.nan)))
            gated.append(bool(evidence.get("gated", False)))
            vetoed.append(bool(evidence.get("vetoed", False)))
            advance(1)
    return SideScores(np.array(scores), np.array(gated, dtype=bool), np.array(vetoed, dtype=bool))


def run_scores(folder: Path, checker: LivenessChecker, sequences: bool) -> SideScores:
    return _session_scores(folder, checker) if sequences else _frame_scores(folder, checker)


def _shipped(checker: LivenessChecker, sequences: bool) -> Operating:
    if sequences:
        return checker.operating
    threshold = checker.threshold.threshold
    return Operating(threshold, threshold)


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
    live_scores = run_scores(live, checker, sequences)
    attack_scores = {n: run_scores(f, checker, sequences) for n, f in named.items()}
    report = _report(live_scores, attack_scores, _shipped(checker, sequences), sequences)
    return _write(report, checker, out_dir)


def run_source_evaluation(
    *,
    root: Path,
    out_dir: Path,
    sequences: bool = False,
    loso: bool = False,
    apcer: float = 0.05,
    checker: LivenessChecker | None = None,
) -> dict[str, Any]:
    """Per-source (and, with ``loso``, leave-one-source-out) evaluation of a source tree."""
    checker = checker or LivenessChecker()
    sources = [source_scores(folder, checker, sequences) for folder in source_folders(root)]
    live = _joined([s.live for s in sources])
    by_type: dict[str, list[SideScores]] = {}
    for source in sources:
        by_type.setdefault(source.attack_type, []).append(source.attack)
    attacks = {name: _joined(sides) for name, sides in by_type.items()}
    shipped = _shipped(checker, sequences)
    report = _report(live, attacks, shipped, sequences)
    report["per_source"] = summary(evaluate_at(sources, shipped))["per_source"]
    fitted = fit_operating(sources, apcer, sessions=sequences)
    # what `facekey liveness calibrate` would write from this tree
    report["fitted_on_all"] = {"live_at": fitted.live_at, "spoof_at": fitted.spoof_at}
    _write_scores(sources, out_dir)
    if loso:
        report["loso"] = {
            "apcer_target": apcer,
            **summary(leave_one_source_out(sources, apcer, sessions=sequences)),
        }
    return _write(report, checker, out_dir)


def _write_scores(sources: Sequence[SourceScores], out_dir: Path) -> None:
    """Every presentation's score and flags, per source and side (for re-analysis)."""
    document = {
        s.name: {
            "attack_type": s.attack_type,
            **{
                side: {
                    "scores": [None if math.isnan(v) else v for v in scores.scores.tolist()],
                    "gated": scores.gated.tolist(),
                    "vetoed": scores.vetoed.tolist(),
                }
                for side, scores in (("live", s.live), ("attack", s.attack))
            },
        }
        for s in sources
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scores.json").write_text(json.dumps(document) + "\n")


def source_folders(root: Path) -> list[Path]:
    """The source folders of a tree: each has ``live`` and exactly one attack folder."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(f"{root} has no source folders")
    return folders


def source_scores(folder: Path, checker: LivenessChecker, sequences: bool) -> SourceScores:
    sides = sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "live")
    if not (folder / "live").is_dir() or len(sides) != 1:
        raise DatasetError(f"{folder} needs a live folder and exactly one attack type folder")
    live = run_scores(folder / "live", checker, sequences)
    return SourceScores(folder.name, sides[0].name, live, run_scores(sides[0], checker, sequences))


def _joined(sides: Sequence[SideScores]) -> SideScores:
    return SideScores(
        np.concatenate([s.scores for s in sides]),
        np.concatenate([s.gated for s in sides]),
        np.concatenate([s.vetoed for s in sides]),
    )


def _report(
    live: SideScores, attacks: Mapping[str, SideScores], shipped: Operating, sequences: bool
) -> dict[str, Any]:
    accepted = {name: side.acceptable() for name, side in attacks.items()}
    report: dict[str, Any] = {
        "mode": "sessions" if sequences else "frames",
        **pad_metrics(live.acceptable(), accepted, shipped.live_at),
        "samples": {
            "live": int(live.scores.size),
            "attack": {k: int(v.scores.size) for k, v in attacks.items()},
        },
        "failures_to_acquire": _fta(live.scores, {k: v.scores for k, v in attacks.items()}),
        "_scores": {"live": live.acceptable(), "attacks": accepted},
    }
    if sequences:
        report["operating_point"] = {"live_at": shipped.live_at, "spoof_at": shipped.spoof_at}
        report["outcomes"] = {
            "live": live.outcomes(shipped),
            "attack": {k: v.outcomes(shipped) for k, v in attacks.items()},
        }
        report["fusion_version"] = FUSION_VERSION
    return report


def _write(report: dict[str, Any], checker: LivenessChecker, out_dir: Path) -> dict[str, Any]:
    report["scorer"] = {"name": checker.scorer.name, "version": checker.scorer.version}
    report["machine"] = machine_info()
    scores = report.pop("_scores")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report))
    _write_det(scores["live"], scores["attacks"], out_dir / "det.png", report["mode"])
    return report


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
    if "per_source" in report:
        lines += ["## Per source (shipped operating point)", "", *_source_table(report)]
    if "loso" in report:
        loso = report["loso"]
        lines += [
            "## Leave one source out",
            "",
            "APCER per type "
            + ", ".join(f"{k} {_pct(v)}" for k, v in loso["apcer_per_type"].items())
            + ";"
            f" worst type {_pct(loso['apcer'])}, worst source {_pct(loso['apcer_worst_source'])};"
            f" BPCER {_pct(loso['bpcer'])} (inconclusive {_pct(loso['live_inconclusive'])},"
            f" spoof {_pct(loso['live_spoof'])})",
            "",
            *_source_table(loso),
        ]
    return "\n".join(lines)


def _source_table(report: Mapping[str, Any]) -> list[str]:
    lines = [
        "| source | attack type | live: live / inconclusive / spoof | BPCER "
        "| attack: live / inconclusive / spoof | APCER |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in report["per_source"].items():
        live, attack = row["live"], row["attack"]
        lines.append(
            f"| {name} | {row['attack_type']} "
            f"| {live['live']} / {live['inconclusive']} / {live['spoof']} | {_pct(row['bpcer'])} "
            f"| {attack['live']} / {attack['inconclusive']} / {attack['spoof']} "
            f"| {_pct(row['apcer'])} |"
        )
    return [*lines, ""]


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
