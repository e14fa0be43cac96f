"""Tests of facekey.evaluation.report and facekey.evaluation.plots."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facekey.calibration import CalibrationTable, EngineCalibration
from facekey.errors import EngineMismatch, MissingExtra
from facekey.evaluation.metrics import build_calibration, split_scores
from facekey.evaluation.pairs import Pair, PairSet
from facekey.evaluation.plots import det_plot
from facekey.evaluation.report import build_pair_report, write_pair_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pair_set(same: list[bool], folds: int | None) -> PairSet:
    per_fold = len(same) // folds if folds else 0
    pairs = tuple(
        Pair(
            left=Path(f"img/{k}_a.jpg"),
            right=Path(f"img/{k}_b.jpg"),
            same=s,
            fold=k // per_fold if folds else None,
        )
        for k, s in enumerate(same)
    )
    images = tuple(sorted({p.left for p in pairs} | {p.right for p in pairs}))
    return PairSet(pairs=pairs, folds=folds, images=images)


def _separated(folds: int | None, per_class: int = 30) -> tuple[PairSet, np.ndarray]:
    """Pairs in LFW order (each fold: same then different) with perfectly separated scores."""
    rng = np.random.default_rng(0)
    blocks = folds or 1
    same: list[bool] = []
    scores: list[float] = []
    for _ in range(blocks):
        same += [True] * per_class + [False] * per_class
        scores += list(rng.uniform(0.6, 0.9, per_class)) + list(rng.uniform(-0.2, 0.3, per_class))
    return _pair_set(same, folds), np.array(scores)


def _report(pair_set: PairSet, scores: np.ndarray, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "engine": "fake",
        "engine_version": "1.0",
        "pair_set": pair_set,
        "scores": scores,
        "calibration": None,
        "labels_by_subset": None,
        "images": 2 * len(pair_set.pairs),
        "failed_images": [],
        "seconds": 1.5,
    }
    args.update(kwargs)
    return build_pair_report(**args)


def _tables(*tables: CalibrationTable) -> EngineCalibration:
    return EngineCalibration({t.condition: t for t in tables})


def test_kfold_report_separated() -> None:
    pair_set, scores = _separated(folds=10)
    report = _report(pair_set, scores)
    assert report["accuracy"] == 1.0
    assert report["accuracy_std"] == 0.0
    assert "10-fold" in str(report["accuracy_protocol"])
    assert report["eer"] == 0.0
    assert report["pairs"] == 600
    assert report["failed_pairs"] == 0
    assert report["failure_to_acquire_rate"] == 0.0
    assert report["calibrated_threshold"] is None
    assert report["accuracy_at_calibrated_threshold"] is None
    assert report["tar_at_far"] == {"1e-2": 1.0, "1e-3": 1.0, "1e-4": 1.0}
    assert set(report["threshold_at_far"]) == {"1e-2", "1e-3", "1e-4"}
    # 300 impostor pairs: 1e-3 and 1e-4 are unreachable
    assert report["unreachable_far"] == ["1e-3", "1e-4"]
    notes = report["notes"]
    assert isinstance(notes, list)
    assert any("1e-3" in n and "unreachable" in n for n in notes)
    json.dumps(report, allow_nan=False)


def test_failed_pairs_count_as_errors() -> None:
    pair_set, scores = _separated(folds=None, per_class=50)
    scores[[0, 1, 60]] = math.nan  # two genuine, one impostor
    failed = [Path("img/0_a.jpg"), Path("img/1_b.jpg"), Path("img/60_a.jpg")]
    report = _report(pair_set, scores, images=200, failed_images=failed)
    assert report["failed_pairs"] == 3
    assert report["failure_to_acquire_rate"] == pytest.approx(3 / 200)
    assert report["accuracy"] == pytest.approx(97 / 100)
    assert report["accuracy_protocol"] == (
        "best threshold on these pairs (optimistic: fit on the test pairs themselves)"
    )
    assert report["tar_at_far"]["1e-2"] == pytest.approx(48 / 50)
    assert report["eer"] == pytest.approx(2 / 50)  # FNMR never below the 2 failed genuine
    notes = report["notes"]
    assert isinstance(notes, list)
    assert any(n.startswith("3 pairs had an image with no face") for n in notes)


def test_calibrated_accuracy_without_folds() -> None:
    pair_set, scores = _separated(folds=None, per_class=50)
    rng = np.random.default_rng(1)
    calibration = build_calibration(
        rng.uniform(0.6, 0.9, 1000),
        rng.uniform(-0.2, 0.3, 10_000),
        engine="fake",
        engine_version="1.0",
    )
    report = _report(pair_set, scores, calibration=_tables(calibration))
    assert report["calibrated_threshold"] == pytest.approx(calibration.threshold_for(1e-3))
    assert "calibrated" in str(report["accuracy_protocol"])
    assert report["accuracy"] == report["accuracy_at_calibrated_threshold"] == 1.0
    assert report["subset_threshold"] == report["calibrated_threshold"]


def test_calibration_of_other_engine_is_refused() -> None:
    pair_set, scores = _separated(folds=None)
    calibration = build_calibration([0.9], [0.1] * 20, engine="other", engine_version="1.0")
    with pytest.raises(EngineMismatch):
        _report(pair_set, scores, calibration=_tables(calibration))


def test_unreachable_calibration_fmr_is_noted() -> None:
    pair_set, scores = _separated(folds=None)
    calibration = build_calibration([0.9], [0.1] * 20, engine="fake", engine_version="1.0")
    report = _report(pair_set, scores, calibration=_tables(calibration), operating_fmr=1e-4)
    assert report["calibrated_threshold"] is None
    assert any("no calibrated threshold" in n for n in report["notes"])


def test_subsets() -> None:
    pair_set, scores = _separated(folds=None, per_class=20)
    first = np.zeros(40, dtype=bool)
    first[:10] = True
    first[20:25] = True
    only_genuine = np.zeros(40, dtype=bool)
    only_genuine[10:20] = True
    subsets = {"mask/mask": first, "no-mask/no-mask": only_genuine}
    report = _report(pair_set, scores, labels_by_subset=subsets)
    result = report["subsets"]
    assert isinstance(result, dict)
    assert result["mask/mask"]["pairs"] == 15
    assert result["mask/mask"]["genuine_pairs"] == 10
    assert result["mask/mask"]["accuracy"] == 1.0
    assert result["mask/mask"]["eer"] == 0.0
    assert result["no-mask/no-mask"]["eer"] is None
    assert result["no-mask/no-mask"]["accuracy"] == 1.0
    assert any("no-mask/no-mask" in n for n in report["notes"])


def test_scores_must_match_pairs() -> None:
    pair_set, scores = _separated(folds=None)
    with pytest.raises(ValueError, match="scores for"):
        _report(pair_set, scores[:-1])


def test_write_pair_report(tmp_path: Path) -> None:
    pair_set, scores = _separated(folds=10)
    scores[0] = math.nan
    report = _report(pair_set, scores)
    curves = {"fake 1.0": split_scores(scores, pair_set.same_mask())}
    paths = write_pair_report(report, tmp_path / "out", curves)
    assert json.loads(paths["json"].read_text()) == report
    markdown = paths["markdown"].read_text()
    assert "| accuracy |" in markdown
    assert "| 1e-3 |" in markdown
    assert "## Notes" in markdown
    assert paths["det"] == tmp_path / "out" / "det.png"
    assert paths["det"].read_bytes().startswith(PNG_MAGIC)


def test_det_plot_several_curves(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    curves = {
        "a": (rng.normal(0.6, 0.1, 2000), rng.normal(0.0, 0.1, 200_000)),
        "b": (rng.normal(0.4, 0.1, 2000), rng.normal(0.0, 0.1, 200_000)),
    }
    path = det_plot(curves, tmp_path / "det.png", "two engines")
    assert path.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="at least one"):
        det_plot({}, tmp_path / "empty.png", "none")


def test_det_plot_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingExtra, match=r"facekey\[eval\]"):
        det_plot({"a": ([0.9], [0.1])}, tmp_path / "det.png", "t")


def test_a_condition_subset_is_decided_at_its_own_table() -> None:
    """mask/no-mask pairs at the masked table's threshold; FNMR and FMR reported there."""
    pair_set, scores = _separated(folds=None, per_class=20)
    rng = np.random.default_rng(4)
    unmasked = build_calibration(
        rng.uniform(0.6, 0.9, 1000),
        rng.uniform(-0.2, 0.3, 10_000),
        engine="fake",
        engine_version="1.0",
    )
    masked = build_calibration(
        rng.uniform(0.3, 0.9, 1000),
        rng.uniform(-0.4, 0.1, 10_000),
        engine="fake",
        engine_version="1.0",
        condition="mask/no-mask",
    )
    first = np.zeros(40, dtype=bool)
    first[::2] = True
    conditions = ["mask/no-mask" if f else "no-mask/no-mask" for f in first]
    report = _report(
        pair_set,
        scores,
        calibration=_tables(unmasked, masked),
        labels_by_subset={"mask/no-mask": first, "no-mask/no-mask": ~first},
        pair_conditions=conditions,
    )
    subset = report["subsets"]["mask/no-mask"]
    assert subset["threshold"] == pytest.approx(masked.threshold_for(1e-3))
    assert subset["threshold"] < report["calibrated_threshold"]
    assert "mask/no-mask table" in subset["threshold_from"]
    assert {"fnmr", "fmr", "fnmr_detected", "fmr_detected"} <= set(subset)
    other = report["subsets"]["no-mask/no-mask"]
    assert other["threshold"] == pytest.approx(unmasked.threshold_for(1e-3))
    assert other["fnmr"] == other["fnmr_detected"]
