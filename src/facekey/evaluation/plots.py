"""DET (detection error trade-off) plots; needs the ``facekey[eval]`` extra (matplotlib).

matplotlib is imported inside :func:`det_plot`, and drawing uses the Agg canvas directly
(no pyplot, no global backend switch), so importing this module is cheap and thread-safe.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facekey.errors import MissingExtra
from facekey.evaluation.metrics import (
    FloatArray,
    det_points,
    fmr_reachable,
    fta_scores,
    thresholds_at_fmr,
)

__all__ = ["DET_MARKED_FMRS", "det_plot", "det_plot_rates"]

DET_MARKED_FMRS: tuple[float, ...] = (1e-2, 1e-3, 1e-4)
"""The FMR operating points marked on each DET curve (when the data reaches them)."""

_MARKERS = {1e-2: "o", 1e-3: "s", 1e-4: "^"}


def _load_matplotlib() -> tuple[Any, Any]:
    """Return (Figure, FigureCanvasAgg) or raise MissingExtra."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtra(
            "DET plots need matplotlib: install facekey[eval] (pip install 'facekey[eval]')"
        ) from exc
    return Figure, FigureCanvasAgg


def _floor(rates: FloatArray, count: int) -> FloatArray:
    """Clip zero rates to half a count so they show on log axes."""
    return np.maximum(rates, 0.5 / count)


def _operating_points(gen: FloatArray, imp: FloatArray) -> list[tuple[float, float, float]]:
    """Return (target fmr, fmr, fnmr) for each reachable marked FMR, zero FNMR floored."""
    targets = [f for f in DET_MARKED_FMRS if fmr_reachable(f, imp.size)]
    points = []
    for target, threshold in zip(targets, thresholds_at_fmr(imp, targets), strict=True):
        fnmr = float(np.count_nonzero(gen < threshold) / gen.size)
        points.append((target, target, max(fnmr, 0.5 / gen.size)))
    return points


def _draw_curve(axes: Any, label: str, genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> None:
    """Draw one DET curve and its marked operating points."""
    gen = fta_scores(genuine)
    imp = fta_scores(impostor)
    _, fmr, fnmr = det_points(gen, imp)
    (line,) = axes.plot(
        _floor(fmr, imp.size), _floor(fnmr, gen.size), label=label, drawstyle="steps-post"
    )
    for target, fmr_value, fnmr_value in _operating_points(gen, imp):
        axes.plot(
            fmr_value, fnmr_value, marker=_MARKERS[target], color=line.get_color(), linestyle="none"
        )


def _legend_for_markers(axes: Any) -> None:
    """Add grey legend entries explaining the operating-point markers."""
    for target in DET_MARKED_FMRS:
        axes.plot(
            [],
            [],
            marker=_MARKERS[target],
            color="grey",
            linestyle="none",
            label=f"FMR {target:.0e}",
        )


def det_plot(
    curves: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]], path: Path, title: str
) -> Path:
    """Draw DET curves (FNMR against FMR, log-log) to a PNG at ``path`` and return ``path``.

    ``curves`` maps a legend label to ``(genuine, impostor)`` scores; NaN scores (failure to
    acquire) are treated as in :func:`facekey.evaluation.metrics.fta_scores`. The points at
    FMR 1e-2, 1e-3 and 1e-4 are marked where the impostor count reaches them. Zero rates are
    drawn at half a count (0.5 / n) since log axes cannot show 0. Raises MissingExtra when
    matplotlib is not installed and ValueError when ``curves`` is empty.
    """
    if not curves:
        raise ValueError("det_plot needs at least one curve")
    figure, axes = _figure()
    for label, (genuine, impostor) in curves.items():
        _draw_curve(axes, label, genuine, impostor)
    _legend_for_markers(axes)
    _finish(axes, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def det_plot_rates(curves: Mapping[str, Sequence[tuple[float, float]]], title: str) -> bytes:
    """A DET plot, as PNG bytes, of curves already measured as (FMR, FNMR) points, such as a
    calibration table's (:class:`facekey.calibration.CalibrationTable`); zero FNMRs are drawn
    at the smallest positive one. Raises MissingExtra without matplotlib."""
    if not curves:
        raise ValueError("det_plot_rates needs at least one curve")
    figure, axes = _figure()
    for label, points in curves.items():
        fmr = np.array([p[0] for p in points], dtype=np.float64)
        fnmr = np.array([p[1] for p in points], dtype=np.float64)
        floor = fnmr[fnmr > 0].min() / 2 if np.any(fnmr > 0) else 1e-4
        axes.plot(fmr, np.maximum(fnmr, floor), label=label, drawstyle="steps-post")
    _finish(axes, title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _figure() -> tuple[Any, Any]:
    """A new Agg figure of the DET plots' size and its axes."""
    figure_cls, canvas_cls = _load_matplotlib()
    figure = figure_cls(figsize=(6.4, 5.6), dpi=120)
    canvas_cls(figure)
    return figure, figure.add_subplot(1, 1, 1)


def _finish(axes: Any, title: str) -> None:
    """Log-log axes, labels, grid and legend of a DET plot."""
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("FMR (false match rate)")
    axes.set_ylabel("FNMR (false non-match rate)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
