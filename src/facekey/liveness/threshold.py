"""The shipped operating thresholds of the passive scorer, read from a small versioned file.

A face is called live by the passive scorer when its score is at least ``threshold``; a passive
burst whose frames are not clearly live is ``inconclusive`` (see :mod:`facekey.liveness.fusion`).
The file ``facekey/liveness/passive-threshold.json`` is written by the development tool
``facekey liveness calibrate`` (:mod:`facekey.evaluation.liveness_calibration`) together with the
scorer's name and version, the data and protocol it was chosen with and the date;
:func:`load_threshold` reads it back and refuses a file written for another scorer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from facekey.errors import DatasetError

THRESHOLD_FORMAT: Final = 2
THRESHOLD_FILE: Final = "passive-threshold.json"


@dataclass(frozen=True)
class PassiveThreshold:
    """The calibrated operating point of one passive scorer (name and version).

    ``threshold``: a single frame is live at or above it. ``session_live_at`` and
    ``session_spoof_at``: a passive burst (its frames' mean log-odds, as a probability) is live at
    or above the first, spoof at or below the second, inconclusive between (a challenge).
    """

    scorer: str
    scorer_version: str
    threshold: float
    apcer_target: float
    session_live_at: float = 0.5
    session_spoof_at: float = 0.5
    data: Mapping[str, Any] = field(default_factory=dict)
    date: str = ""
    format: int = THRESHOLD_FORMAT

    def to_json(self) -> str:
        """The file's text (sorted keys, indented)."""
        return json.dumps({**asdict(self), "data": dict(self.data)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> PassiveThreshold:
        """Parse a threshold file; raises :class:`DatasetError` on a malformed one."""
        try:
            document = json.loads(text)
            if document.get("format") != THRESHOLD_FORMAT:
                raise ValueError(f"unsupported format {document.get('format')!r}")
            return cls(**document)
        except (ValueError, TypeError, AttributeError) as exc:
            raise DatasetError(f"malformed passive threshold file: {exc}") from exc


def packaged_threshold_path() -> Path:
    """Where the packaged threshold file lives in the source tree."""
    return Path(__file__).with_name(THRESHOLD_FILE)


def load_threshold(scorer: str, scorer_version: str, path: Path | None = None) -> PassiveThreshold:
    """The calibrated threshold for ``scorer``; refuses a file made for another scorer."""
    if path is None:
        text = files("facekey.liveness").joinpath(THRESHOLD_FILE).read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    loaded = PassiveThreshold.from_json(text)
    if (loaded.scorer, loaded.scorer_version) != (scorer, scorer_version):
        raise DatasetError(
            f"the threshold file is for {loaded.scorer} v{loaded.scorer_version}, not "
            f"{scorer} v{scorer_version}; run `facekey liveness calibrate`"
        )
    return loaded
