"""Calibration tables: an engine's similarity score → false-match rate, per condition.

A :class:`CalibrationTable` is measured with ``facekey calibrate`` on every impostor pair of a
labelled set; decision policies read it to turn a score into the FMR they bound. A table holds
for one engine version and one *condition* of the two faces compared: both unmasked (the
default), one masked, or both masked — masked strangers come closer to each other than
unmasked ones, so a threshold measured on unmasked faces does not hold its FMR on masks.

Where tables come from (:class:`Calibrations`): tables an operator installed in the data
directory (``<data dir>/calibrations``, each pinned by its sha256 at install time), then the
tables shipped in the package (``facekey/calibrations/<engine>-<version>[.<condition>].json``).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from facekey.engines.base import EngineInfo
from facekey.errors import DatasetError
from facekey.integrity import PinnedFiles

Condition = Literal["no-mask/no-mask", "mask/no-mask", "mask/mask"]
CONDITIONS: Final[tuple[Condition, ...]] = get_args(Condition)
UNMASKED: Final[Condition] = "no-mask/no-mask"
CALIBRATION_FORMAT: Final = 1
"""The ``"format"`` value :meth:`CalibrationTable.to_json` writes."""
PACKAGE: Final = "facekey.calibrations"

_Floats = npt.NDArray[np.float64]


def condition_of(first_masked: bool, second_masked: bool) -> Condition:
    """The condition of a comparison of two faces, by whether each wears a mask."""
    masks = int(first_masked) + int(second_masked)
    return ("no-mask/no-mask", "mask/no-mask", "mask/mask")[masks]


@dataclass(frozen=True)
class CalibrationTable:
    """Score-to-FMR calibration of one engine version under one condition.

    ``points`` are ``(score, fmr, fnmr)`` tuples with scores strictly ascending and FMR
    strictly descending; each says "at threshold ``score`` the measured FMR is at most
    ``fmr`` and the FNMR is ``fnmr``". FMR is always > 0: the highest point is at most the
    resolution limit ``1 / impostor_pairs``.
    """

    engine: str
    engine_version: str
    impostor_pairs: int
    genuine_pairs: int
    points: tuple[tuple[float, float, float], ...]
    condition: Condition = UNMASKED
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        """Check that the points are non-empty, finite and monotone."""
        if not self.points:
            raise ValueError("a calibration table needs at least one point")
        if self.condition not in CONDITIONS:
            raise ValueError(f"unknown condition {self.condition!r}; use one of {CONDITIONS}")
        scores = np.array([p[0] for p in self.points], dtype=np.float64)
        fmrs = np.array([p[1] for p in self.points], dtype=np.float64)
        fnmrs = np.array([p[2] for p in self.points], dtype=np.float64)
        if not (np.isfinite(scores).all() and np.isfinite(fmrs).all()):
            raise ValueError("calibration points must be finite")
        if np.any(np.diff(scores) <= 0) or np.any(np.diff(fmrs) >= 0):
            raise ValueError("calibration scores must ascend and FMRs descend strictly")
        if fmrs.min() <= 0 or fmrs.max() > 1 or fnmrs.min() < 0 or fnmrs.max() > 1:
            raise ValueError("calibration FMRs must be in (0, 1] and FNMRs in [0, 1]")

    @property
    def key(self) -> tuple[str, str, Condition]:
        """(engine id, engine version, condition): what the table is for."""
        return self.engine, self.engine_version, self.condition

    @property
    def min_fmr(self) -> float:
        """The lowest FMR this table can vouch for (its highest point's FMR)."""
        return self.points[-1][1]

    def _axes(self) -> tuple[_Floats, _Floats]:
        """Return (scores ascending, log10 FMR descending)."""
        scores = np.array([p[0] for p in self.points], dtype=np.float64)
        log_fmr = np.log10(np.array([p[1] for p in self.points], dtype=np.float64))
        return scores, log_fmr

    def fmr_at(self, score: float) -> float:
        """Return the estimated FMR at threshold ``score``: monotone non-increasing, never 0.

        Between points, log10(FMR) is interpolated linearly in the score. Outside the points
        the value is clamped: below the lowest point it is the lowest point's FMR (the true
        FMR is higher), and at or above the highest point it is the highest point's FMR,
        which is then only an *upper bound* (no impostor scored that high; at best
        ``1 / impostor_pairs``). :meth:`is_upper_bound` tells when that is the case.
        """
        scores, log_fmr = self._axes()
        return float(10.0 ** np.interp(score, scores, log_fmr))

    def is_upper_bound(self, score: float) -> bool:
        """Return whether :meth:`fmr_at` ``(score)`` is only an upper bound (clamped high)."""
        return score >= self.points[-1][0]

    def threshold_for(self, fmr_target: float) -> float:
        """Return the threshold at which :meth:`fmr_at` equals ``fmr_target``.

        A target at or above the lowest point's FMR gives the lowest point's score. A target
        below :attr:`min_fmr` is not supported by the data and raises ValueError.
        """
        if not fmr_target > 0.0:
            raise ValueError(f"fmr_target must be positive, got {fmr_target}")
        if fmr_target < self.min_fmr * (1.0 - 1e-9):
            raise ValueError(
                f"FMR {fmr_target:g} is below what {self.impostor_pairs} impostor pairs can "
                f"measure (lowest calibrated FMR {self.min_fmr:g})"
            )
        scores, log_fmr = self._axes()
        return float(np.interp(math.log10(fmr_target), log_fmr[::-1], scores[::-1]))

    def to_json(self) -> str:
        """Return the table as JSON text with a ``"format": 1`` key."""
        document: dict[str, Any] = {
            "format": CALIBRATION_FORMAT,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "condition": self.condition,
            "impostor_pairs": self.impostor_pairs,
            "genuine_pairs": self.genuine_pairs,
        }
        if self.source:
            document["source"] = self.source
        document["points"] = [{"score": s, "fmr": f, "fnmr": n} for s, f, n in self.points]
        return json.dumps(document, indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> CalibrationTable:
        """Parse :meth:`to_json` output; raise DatasetError if it is not a format-1 table."""
        try:
            document = json.loads(text)
            return cls._from_document(document)
        except (ValueError, TypeError, KeyError) as exc:
            raise DatasetError(f"not a facekey calibration table: {exc}") from exc

    @classmethod
    def _from_document(cls, document: Any) -> CalibrationTable:
        """Build a table from a parsed JSON object (no ``condition``: unmasked faces)."""
        if not isinstance(document, dict) or document.get("format") != CALIBRATION_FORMAT:
            raise ValueError(f'expected an object with "format": {CALIBRATION_FORMAT}')
        points = tuple(
            (float(p["score"]), float(p["fmr"]), float(p["fnmr"])) for p in document["points"]
        )
        return cls(
            engine=str(document["engine"]),
            engine_version=str(document["engine_version"]),
            impostor_pairs=int(document["impostor_pairs"]),
            genuine_pairs=int(document["genuine_pairs"]),
            points=points,
            condition=document.get("condition", UNMASKED),
            source=str(document.get("source", "")),
        )


def calibration_name(engine_id: str, engine_version: str, condition: Condition = UNMASKED) -> str:
    """File name of the table for one engine version and condition."""
    suffix = "" if condition == UNMASKED else "." + condition.replace("/", "-")
    return f"{engine_id}-{engine_version}{suffix}.json"


def shipped_calibration(
    info: EngineInfo, condition: Condition = UNMASKED
) -> CalibrationTable | None:
    """The packaged table for this engine version and condition, or None."""
    resource = resources.files(PACKAGE) / calibration_name(info.id, info.version, condition)
    if not resource.is_file():
        return None
    return CalibrationTable.from_json(resource.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class EngineCalibration:
    """The tables of one engine version, by condition; the unmasked table is required."""

    tables: dict[Condition, CalibrationTable]

    def __post_init__(self) -> None:
        if UNMASKED not in self.tables:
            raise ValueError("an engine calibration needs the unmasked table")

    @property
    def unmasked(self) -> CalibrationTable:
        return self.tables[UNMASKED]

    def table(self, condition: Condition) -> CalibrationTable:
        """The table of ``condition``; without one, the unmasked table (see below).

        A missing masked table falls back to the unmasked one, which is *not* conservative for
        two masked faces: :meth:`has` lets callers refuse instead.
        """
        return self.tables.get(condition, self.unmasked)

    def has(self, condition: Condition) -> bool:
        return condition in self.tables


class Calibrations:
    """Every engine's tables: installed in the data directory first, else shipped.

    Thread-safe; tables are read once per engine version and kept.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], EngineCalibration | None] = {}

    def for_engine(self, info: EngineInfo) -> EngineCalibration | None:
        """The tables of ``info``'s engine version, or None when it has no unmasked table."""
        key = (info.id, info.version)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._load(info)
            return self._cache[key]

    def _load(self, info: EngineInfo) -> EngineCalibration | None:
        tables = {t.condition: t for t in self._installed(info)}
        for condition in CONDITIONS:
            if condition not in tables:
                shipped = shipped_calibration(info, condition)
                if shipped is not None:
                    tables[condition] = shipped
        return EngineCalibration(tables) if UNMASKED in tables else None

    def _installed(self, info: EngineInfo) -> list[CalibrationTable]:
        """Installed tables of this engine version, newest last (the newest wins)."""
        if self.directory is None:
            return []
        found = []
        for record in PinnedFiles(self.directory).all():
            if record.engine != info.id:
                continue
            table = CalibrationTable.from_json(record.path(self.directory).read_bytes())
            if table.engine_version == info.version:
                found.append(table)
        return found

    def install(self, path: Path, *, sha256: str) -> CalibrationTable:
        """Install an operator's table file, checked against its pinned sha256."""
        if self.directory is None:
            raise ValueError("these calibrations have no data directory to install into")
        table = CalibrationTable.from_json(path.read_bytes())
        PinnedFiles(self.directory).add(path, sha256=sha256, engine=table.engine)
        with self._lock:
            self._cache.pop((table.engine, table.engine_version), None)
        return table
