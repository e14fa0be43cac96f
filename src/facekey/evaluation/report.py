"""The pair-verification report: ``report.json``, ``report.md`` and ``det.png``.

:func:`build_pair_report` turns the scores of a :class:`~facekey.evaluation.pairs.PairSet`
(NaN where an image yielded no face) into a JSON-ready dict; :func:`write_pair_report` writes
it out. Pairs whose image yields no face count as errors (see
:mod:`facekey.evaluation.metrics`): always wrong for accuracy, ``-inf`` scores for EER and
TAR@FAR (ISO/IEC 19795-1 generalized rates).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facekey.calibration import CONDITIONS, CalibrationTable, Condition, EngineCalibration
from facekey.errors import EngineMismatch
from facekey.evaluation.metrics import (
    FloatArray,
    accuracy_at,
    best_threshold,
    eer,
    fmr_reachable,
    fta_scores,
    kfold_accuracy,
    split_scores,
    thresholds_at_fmr,
)
from facekey.evaluation.pairs import PairSet
from facekey.evaluation.plots import det_plot

__all__ = ["REPORT_FARS", "build_pair_report", "write_pair_report"]

REPORT_FARS: dict[str, float] = {"1e-2": 1e-2, "1e-3": 1e-3, "1e-4": 1e-4}
"""The FAR (FMR) levels reported, keyed as they appear in the report."""

PROTOCOL_KFOLD = "{folds}-fold cross-validation (LFW protocol): threshold fit on the other folds"
PROTOCOL_CALIBRATED = "calibrated threshold at FMR {fmr:g} (from the calibration table)"
PROTOCOL_BEST = "best threshold on these pairs (optimistic: fit on the test pairs themselves)"


def _num(value: float | None) -> float | None:
    """Return ``value`` as a JSON-safe float, or None when it is missing or not finite."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class _Scores:
    """One set of pair scores split for the metrics."""

    genuine: FloatArray  # NaN = failure to acquire
    impostor: FloatArray

    @property
    def complete(self) -> bool:
        """Whether both genuine and impostor pairs are present."""
        return bool(self.genuine.size > 0 and self.impostor.size > 0)

    def pair(self) -> tuple[FloatArray, FloatArray]:
        """Return (genuine, impostor) as given (NaN = failure; always wrong for accuracy)."""
        return self.genuine, self.impostor

    def rates(self) -> tuple[FloatArray, FloatArray]:
        """Return (genuine, impostor) with failures mapped to -inf (generalized rates)."""
        return fta_scores(self.genuine), fta_scores(self.impostor)


def _far_tables(scores: _Scores) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Return (tar_at_far, threshold_at_far, unreachable FAR keys)."""
    gen, imp = scores.rates()
    values = thresholds_at_fmr(imp, list(REPORT_FARS.values()))
    tars: dict[str, Any] = {}
    thresholds: dict[str, Any] = {}
    for key, threshold in zip(REPORT_FARS, values, strict=True):
        tars[key] = _num(float(np.count_nonzero(gen >= threshold) / gen.size))
        thresholds[key] = _num(threshold)
    unreachable = [k for k, far in REPORT_FARS.items() if not fmr_reachable(far, imp.size)]
    return tars, thresholds, unreachable


def _error_rates(scores: _Scores) -> dict[str, Any]:
    """Return eer, tar_at_far, threshold_at_far and unreachable_far (None when incomplete)."""
    if not scores.complete:
        return {"eer": None, "tar_at_far": None, "threshold_at_far": None, "unreachable_far": []}
    tars, thresholds, unreachable = _far_tables(scores)
    gen, imp = scores.rates()
    return {
        "eer": _num(eer(gen, imp)),
        "tar_at_far": tars,
        "threshold_at_far": thresholds,
        "unreachable_far": unreachable,
    }


def _calibrated_threshold(
    calibration: CalibrationTable | None, operating_fmr: float, notes: list[str]
) -> float | None:
    """Return the calibration's threshold at ``operating_fmr``, or None (with a note)."""
    if calibration is None:
        return None
    try:
        return float(calibration.threshold_for(operating_fmr))
    except ValueError as exc:
        notes.append(f"no calibrated threshold: {exc}")
        return None


def _check_calibration(
    calibration: CalibrationTable | None, engine: str, engine_version: str
) -> None:
    """Raise EngineMismatch when the calibration belongs to another engine or version."""
    if calibration is None:
        return
    if (calibration.engine, calibration.engine_version) != (engine, engine_version):
        raise EngineMismatch(
            f"calibration is for {calibration.engine} {calibration.engine_version}, "
            f"not {engine} {engine_version}"
        )


def _accuracy(
    pair_set: PairSet, scores: FloatArray, split: _Scores, calibrated: float | None
) -> dict[str, Any]:
    """Return accuracy, accuracy_std and accuracy_protocol under the applicable protocol."""
    if pair_set.folds is not None and pair_set.folds >= 2:
        mean, std = kfold_accuracy(scores, pair_set.same_mask(), pair_set.fold_ids())
        protocol = PROTOCOL_KFOLD.format(folds=pair_set.folds)
        return {"accuracy": mean, "accuracy_std": std, "accuracy_protocol": protocol}
    if calibrated is not None:
        value = accuracy_at(*split.pair(), calibrated)
        return {"accuracy": value, "accuracy_std": None, "accuracy_protocol": "calibrated"}
    value = accuracy_at(*split.pair(), best_threshold(*split.pair()))
    return {"accuracy": value, "accuracy_std": None, "accuracy_protocol": "best"}


def _protocol_text(key: str, operating_fmr: float) -> str:
    """Expand the short protocol keys used by :func:`_accuracy`."""
    if key == "calibrated":
        return PROTOCOL_CALIBRATED.format(fmr=operating_fmr)
    if key == "best":
        return PROTOCOL_BEST
    return key


def _rates_at(
    gen: FloatArray, imp: FloatArray, thresholds: FloatArray | float
) -> dict[str, float | None]:
    """FNMR and FMR of these pairs at a threshold (one, or one per pair in pair order of
    ``gen`` then ``imp``); failures to acquire are errors (generalized rates)."""
    per_pair = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (gen.size + imp.size,))
    g, i = fta_scores(gen), fta_scores(imp)
    fnmr = float(np.mean(g < per_pair[: gen.size])) if gen.size else None
    fmr = float(np.mean(i >= per_pair[gen.size :])) if imp.size else None
    return {"fnmr": fnmr, "fmr": fmr}


@dataclass(frozen=True)
class _Operating:
    """How subsets are decided: the default threshold, and each condition's own threshold
    (from its calibration table) where there is one."""

    default: float
    by_condition: Mapping[str, float]
    operating_fmr: float

    def of(self, name: str) -> tuple[float, str]:
        """(threshold, where it comes from) for a subset named after a condition, or not."""
        if name in self.by_condition:
            return self.by_condition[name], f"{name} table at FMR {self.operating_fmr:g}"
        return self.default, "the report's threshold"


def _condition_thresholds(
    calibration: EngineCalibration | None, operating_fmr: float, notes: list[str] | None = None
) -> dict[str, float]:
    """Each condition's own threshold at ``operating_fmr``, where its table reaches it."""
    found: dict[str, float] = {}
    for condition in CONDITIONS:
        if calibration is None or not calibration.has(condition):
            continue
        threshold = _calibrated_threshold(
            calibration.table(condition), operating_fmr, [] if notes is None else notes
        )
        if threshold is not None:
            found[condition] = threshold
    return found


def _operating(
    calibration: EngineCalibration | None, operating_fmr: float, default: float, notes: list[str]
) -> _Operating:
    return _Operating(
        default, _condition_thresholds(calibration, operating_fmr, notes), operating_fmr
    )


def _pair_thresholds(
    calibration: EngineCalibration | None,
    operating_fmr: float,
    conditions: Sequence[Condition] | None,
    default: float,
) -> FloatArray | None:
    """Each pair's threshold by the condition the system detected for it."""
    if conditions is None:
        return None
    by_condition = _condition_thresholds(calibration, operating_fmr)
    return np.array([by_condition.get(c, default) for c in conditions], dtype=np.float64)


def _subset(
    mask: npt.NDArray[np.bool_],
    scores: FloatArray,
    same: npt.NDArray[np.bool_],
    threshold: float,
    pair_thresholds: FloatArray | None,
) -> dict[str, Any]:
    """The metrics of one subset: accuracy, FNMR and FMR at its ``threshold``; with
    ``pair_thresholds`` (each pair's threshold as the system would pick it) also at those."""
    gen, imp = split_scores(scores[mask], same[mask])
    split = _Scores(gen, imp)
    accuracy = accuracy_at(gen, imp, threshold) if mask.any() else None
    result: dict[str, Any] = {
        "pairs": int(mask.sum()),
        "genuine_pairs": int(gen.size),
        "impostor_pairs": int(imp.size),
        "failed_pairs": int(np.isnan(scores[mask]).sum()),
        "accuracy": _num(accuracy),
        "threshold": _num(threshold),
        **_rates_at(gen, imp, threshold),
        **_error_rates(split),
    }
    if pair_thresholds is not None:
        g_t, i_t = split_scores(pair_thresholds[mask], same[mask])
        rates = _rates_at(gen, imp, np.concatenate([g_t, i_t]))
        result |= {"fnmr_detected": rates["fnmr"], "fmr_detected": rates["fmr"]}
    return result


def _subsets(
    labels_by_subset: Mapping[str, npt.ArrayLike] | None,
    scores: FloatArray,
    same: npt.NDArray[np.bool_],
    operating: _Operating,
    pair_thresholds: FloatArray | None,
) -> dict[str, Any]:
    """Return {subset name: metrics} for each boolean mask over the pairs."""
    if not labels_by_subset:
        return {}
    result: dict[str, Any] = {}
    for name, raw_mask in labels_by_subset.items():
        mask = np.asarray(raw_mask, dtype=np.bool_).ravel()
        if mask.shape != scores.shape:
            raise ValueError(f"subset {name!r}: mask has {mask.size} entries, not {scores.size}")
        threshold, source = operating.of(name)
        result[name] = _subset(mask, scores, same, threshold, pair_thresholds) | {
            "threshold_from": source
        }
    return result


def _notes(report: Mapping[str, Any], impostors: int) -> list[str]:
    """Return the notes about failures, unreachable FARs and incomplete subsets."""
    notes: list[str] = []
    if report["failed_pairs"]:
        notes.append(
            f"{report['failed_pairs']} pairs had an image with no face and count as errors "
            "(always wrong for accuracy; non-matches for EER and TAR@FAR)"
        )
    for key in report["unreachable_far"]:
        notes.append(
            f"FAR {key} is unreachable with {impostors} impostor pairs (below 1/{impostors}); "
            "its TAR and threshold are at a threshold just above the highest impostor score"
        )
    for name, subset in report["subsets"].items():
        if subset["eer"] is None:
            notes.append(f"subset {name}: needs both genuine and impostor pairs for EER/TAR")
    return notes


def build_pair_report(
    *,
    engine: str,
    engine_version: str,
    pair_set: PairSet,
    scores: npt.ArrayLike,
    calibration: EngineCalibration | None,
    labels_by_subset: Mapping[str, npt.ArrayLike] | None,
    images: int,
    failed_images: Sequence[Path],
    seconds: float,
    operating_fmr: float = 1e-3,
    pair_conditions: Sequence[Condition] | None = None,
) -> dict[str, Any]:
    """Build the ``report.json`` dict for one engine on one pair set.

    ``scores`` holds one cosine score per pair in ``pair_set.pairs`` order, NaN where an image
    yielded no face. ``accuracy`` is the k-fold CV mean when the pair set declares folds,
    else the accuracy at the calibrated threshold (``calibration.threshold_for(operating_fmr)``),
    else at the best threshold on these pairs; ``accuracy_protocol`` says which. Subset
    accuracies use the calibrated threshold when there is one, else the whole set's best
    threshold (``subset_threshold``); a subset named after a condition (``mask/no-mask``,
    ``mask/mask``) is decided at its own table's threshold, and reports ``fnmr`` and ``fmr``
    there. ``pair_conditions``, the condition the system detects for each pair, adds
    ``fnmr_detected`` / ``fmr_detected``: each pair at the threshold of the table the mask
    detector would pick. All values are JSON-safe (non-finite numbers become None). Raises
    EngineMismatch when ``calibration`` is for another engine or version, and ValueError when
    the scores do not match the pairs or a class of pairs is missing.
    """
    table = None if calibration is None else calibration.unmasked
    _check_calibration(table, engine, engine_version)
    array = np.asarray(scores, dtype=np.float64).ravel()
    same = pair_set.same_mask()
    if array.shape != same.shape:
        raise ValueError(f"{array.size} scores for {same.size} pairs")
    split = _Scores(*split_scores(array, same))
    if not split.complete:
        raise ValueError("the pair set needs both same-person and different-person pairs")
    notes: list[str] = []
    calibrated = _calibrated_threshold(table, operating_fmr, notes)
    best = best_threshold(*split.pair())
    accuracy = _accuracy(pair_set, array, split, calibrated)
    accuracy["accuracy_protocol"] = _protocol_text(accuracy["accuracy_protocol"], operating_fmr)
    subset_threshold = best if calibrated is None else calibrated
    report: dict[str, Any] = {
        "engine": engine,
        "engine_version": engine_version,
        "pairs": int(array.size),
        "genuine_pairs": int(split.genuine.size),
        "impostor_pairs": int(split.impostor.size),
        "folds": pair_set.folds,
        "images": int(images),
        "failed_images": len(failed_images),
        "failed_image_paths": sorted(str(p) for p in failed_images),
        "failure_to_acquire_rate": _num(len(failed_images) / images) if images else None,
        "failed_pairs": int(np.isnan(array).sum()),
        **{k: _num(v) if isinstance(v, float) else v for k, v in accuracy.items()},
        "operating_fmr": operating_fmr,
        "calibrated_threshold": _num(calibrated),
        "accuracy_at_calibrated_threshold": (
            None if calibrated is None else _num(accuracy_at(*split.pair(), calibrated))
        ),
        "best_threshold": _num(best),
        "accuracy_at_best_threshold": _num(accuracy_at(*split.pair(), best)),
        **_error_rates(split),
        "far_floor": 1.0 / split.impostor.size,
        "subset_threshold": _num(subset_threshold),
        "subsets": _subsets(
            labels_by_subset,
            array,
            same,
            _operating(calibration, operating_fmr, subset_threshold, notes),
            _pair_thresholds(calibration, operating_fmr, pair_conditions, subset_threshold),
        ),
        "seconds": _num(seconds),
    }
    report["notes"] = notes + _notes(report, int(split.impostor.size))
    return report


def _fmt(value: Any, digits: int = 4) -> str:
    """Format a report value for the Markdown tables."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _markdown_summary(report: Mapping[str, Any]) -> list[str]:
    """Return the summary table lines."""
    rows = [
        ("pairs", report["pairs"]),
        ("images", report["images"]),
        ("failure to acquire rate", report["failure_to_acquire_rate"]),
        ("failed pairs", report["failed_pairs"]),
        ("accuracy", report["accuracy"]),
        ("accuracy std", report["accuracy_std"]),
        ("accuracy protocol", report["accuracy_protocol"]),
        ("calibrated threshold", report["calibrated_threshold"]),
        ("accuracy at calibrated threshold", report["accuracy_at_calibrated_threshold"]),
        ("EER", report["eer"]),
        ("seconds", report["seconds"]),
    ]
    return ["| metric | value |", "|---|---|", *(f"| {k} | {_fmt(v)} |" for k, v in rows)]


def _markdown_far(report: Mapping[str, Any]) -> list[str]:
    """Return the TAR@FAR table lines."""
    lines = ["| FAR | TAR | threshold | reachable |", "|---|---|---|---|"]
    for key in REPORT_FARS:
        reachable = "no" if key in report["unreachable_far"] else "yes"
        tar = _fmt(report["tar_at_far"][key])
        threshold = _fmt(report["threshold_at_far"][key])
        lines.append(f"| {key} | {tar} | {threshold} | {reachable} |")
    return lines


def _markdown_subsets(report: Mapping[str, Any]) -> list[str]:
    """Return the subset table lines (empty when there are no subsets)."""
    if not report["subsets"]:
        return []
    lines = [
        "",
        "## Subsets",
        "",
        "Each subset at its threshold: a condition's own calibration table where it has one "
        f"(at FMR {report['operating_fmr']:g}), else {_fmt(report['subset_threshold'])}; "
        "*detected*: each pair at the table the mask detector picks.",
        "",
        "| subset | pairs | failed | threshold | accuracy | FNMR | FMR | FNMR / FMR detected "
        "| EER | TAR@1e-3 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in report["subsets"].items():
        tar = None if s["tar_at_far"] is None else s["tar_at_far"]["1e-3"]
        detected = f"{_fmt(s.get('fnmr_detected'))} / {_fmt(s.get('fmr_detected'))}"
        lines.append(
            f"| {name} | {s['pairs']} | {s['failed_pairs']} | {_fmt(s['threshold'])} "
            f"| {_fmt(s['accuracy'])} | {_fmt(s['fnmr'])} | {_fmt(s['fmr'])} | {detected} "
            f"| {_fmt(s['eer'])} | {_fmt(tar)} |"
        )
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """Return a readable Markdown summary of a :func:`build_pair_report` dict."""
    lines = [
        f"# {report['engine']} {report['engine_version']}",
        "",
        *_markdown_summary(report),
        "",
        "## TAR at FAR",
        "",
        *_markdown_far(report),
        *_markdown_subsets(report),
    ]
    if report["notes"]:
        lines += ["", "## Notes", "", *(f"- {note}" for note in report["notes"])]
    return "\n".join(lines) + "\n"


def write_pair_report(
    report: Mapping[str, Any],
    out_dir: Path,
    curves: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]],
) -> dict[str, Path]:
    """Write ``report.json`` (indent 2), ``report.md`` and ``det.png`` into ``out_dir``.

    ``curves`` maps a legend label to ``(genuine, impostor)`` scores for the DET plot (NaN
    allowed). The JSON and Markdown files are written first, so they exist even when the plot
    raises MissingExtra (no matplotlib). Returns {"json", "markdown", "det"} paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    md_path = out_dir / "report.md"
    md_path.write_text(render_markdown(report), encoding="utf-8")
    title = f"DET: {report['engine']} {report['engine_version']}"
    det_path = det_plot(curves, out_dir / "det.png", title)
    return {"json": json_path, "markdown": md_path, "det": det_path}
