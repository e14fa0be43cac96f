"""Temperature screening: one RGB frame and its registered radiometric thermal frame in,
``pass`` / ``refer`` / ``remeasure`` / ``not_screened`` out. No identity, no template.

How a frame pair is read (the practice of IEC 80601-2-59 screening thermographs and
ISO/TR 13154):

1. Faces are found in the RGB frame (BlazeFace) and the inner eye corners (the **inner
   canthi**, Face Mesh points 133 and 362) located on each.
2. A face is a **warm face**, a person, when its hottest point is at least
   :attr:`~ScreeningSettings.warm_face_c` and :attr:`~ScreeningSettings.min_contrast_c` above
   the background around it. A face that is not warm is a photo or a screen: not screened.
3. One person at a time: two warm faces are answered ``remeasure``.
4. The temperature is read at the inner canthi (the hottest patch of skin of a face, closest to
   core temperature), as the maximum of the thermal frame after a 3×3 median (one hot pixel is
   noise, not a temperature) in a patch around each corner, plus the kiosk's **calibration
   offset** (the reference black body's true temperature minus what the camera read of it).
5. The reading is trusted only when the canthi are the hottest part of the face (within
   :attr:`~ScreeningSettings.site_tolerance_c`), the face is large enough and inside the
   frame, and the reading is a plausible skin temperature; otherwise ``remeasure`` (a hand,
   glasses, hair over the eyes, a cold face just in from outside, too far away).
6. The reading, rounded to the 0.1 °C the kiosk shows, is ``refer`` at or above the threshold
   (37.5 °C by default), else ``pass``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from facekey.liveness.thermal import background_temperature
from facekey.vision.detectors import Detector, make_detector
from facekey.vision.mesh import LEFT_EYE_INNER, RIGHT_EYE_INNER, FaceMesh
from facekey.vision.types import Box, Detection, FloatArray, ImageArray

Decision = Literal["pass", "refer", "remeasure", "not_screened"]
DETECTORS: Final = ("blazeface-short", "blazeface-full")
#: A canthus patch's radius, as a share of the distance between the two inner canthi.
PATCH_FRACTION: Final = 0.2


@dataclass(frozen=True)
class ScreeningSettings:
    """A kiosk's threshold, calibration and acceptance limits (°C unless named otherwise)."""

    threshold_c: float = 37.5
    offset_c: float = 0.0
    warm_face_c: float = 30.0
    min_contrast_c: float = 2.0
    min_skin_c: float = 34.0
    max_skin_c: float = 43.0
    site_tolerance_c: float = 0.5
    min_face_px: float = 60.0
    #: A face whose box is cut by the frame edge by more than this share is re-measured.
    max_cut: float = 0.1


@dataclass(frozen=True)
class ScreeningResult:
    """The decision, the temperature shown (None when there is no trusted reading), why."""

    decision: Decision
    temperature_c: float | None
    reason: str

    def contract(self) -> dict[str, Any]:
        """The JSON contract of ``facekey edge screen --json``: exactly these two keys."""
        return {"decision": self.decision, "temperature_c": self.temperature_c}


@dataclass(frozen=True, eq=False)
class _Reading:
    """One face's thermal reading (°C, calibrated)."""

    box: Box
    face_max_c: float
    background_c: float
    canthus_c: float


class Screener:
    """Screens frame pairs; the detector and Face Mesh load on first use and are reused."""

    def __init__(
        self,
        settings: ScreeningSettings | None = None,
        *,
        detector: Detector | None = None,
        mesh: FaceMesh | None = None,
    ) -> None:
        self.settings = settings or ScreeningSettings()
        self._detector = detector
        self._mesh = mesh

    def screen(self, rgb: ImageArray, thermal_c: FloatArray) -> ScreeningResult:
        """Screen one RGB frame and its thermal frame (°C, registered, same size)."""
        if thermal_c.shape != rgb.shape[:2]:
            raise ValueError("register the thermal frame to the RGB frame first")
        calibrated = (thermal_c + np.float32(self.settings.offset_c)).astype(np.float32)
        detections = self._detector_().detect(rgb)
        if not detections:
            return ScreeningResult("not_screened", None, "no face in view")
        readings = [self._read(rgb, calibrated, d) for d in detections]
        warm = [r for r in readings if self._is_warm(r)]
        if not warm:
            return ScreeningResult("not_screened", None, "no warm face: a photo or a screen?")
        if len(warm) > 1:
            return ScreeningResult("remeasure", None, "one person at a time")
        return self._decide(warm[0], rgb.shape)

    def _detector_(self) -> Detector:
        if self._detector is None:
            self._detector = make_detector(DETECTORS)
        return self._detector

    def _mesh_(self) -> FaceMesh:
        if self._mesh is None:
            self._mesh = FaceMesh()
        return self._mesh

    def _is_warm(self, reading: _Reading) -> bool:
        hot_enough = reading.face_max_c >= self.settings.warm_face_c
        return hot_enough and reading.face_max_c - reading.background_c >= (
            self.settings.min_contrast_c
        )

    def _read(self, rgb: ImageArray, thermal: FloatArray, detection: Detection) -> _Reading:
        height, width = thermal.shape
        box = detection.box
        face = box.clipped(width, height)
        smoothed, origin = _smoothed_crop(thermal, face)
        points = self._mesh_().landmarks(rgb, box, detection.keypoints).points
        canthi = points[[RIGHT_EYE_INNER, LEFT_EYE_INNER], :2]
        radius = max(2.0, PATCH_FRACTION * float(np.linalg.norm(canthi[0] - canthi[1])))
        canthus = max(_patch_max(smoothed, origin, p, radius) for p in canthi)
        return _Reading(
            box=box,
            face_max_c=float(np.max(smoothed)),
            background_c=background_temperature(thermal, face),
            canthus_c=canthus,
        )

    def _decide(self, reading: _Reading, shape: tuple[int, ...]) -> ScreeningResult:
        limits = self.settings
        visible = reading.box.clipped(shape[1], shape[0]).area / max(reading.box.area, 1.0)
        checks = [
            (reading.box.width < limits.min_face_px, "too far: come closer"),
            (visible < 1.0 - limits.max_cut, "the face is cut by the frame edge"),
            (
                reading.canthus_c < reading.face_max_c - limits.site_tolerance_c,
                "the inner eye corners are covered (glasses, hair or a hand?)",
            ),
            (reading.canthus_c < limits.min_skin_c, "skin too cold to measure: wait a moment"),
            (reading.canthus_c > limits.max_skin_c, "not a skin temperature"),
        ]
        for failed, reason in checks:
            if failed:
                return ScreeningResult("remeasure", None, reason)
        shown = round(reading.canthus_c, 1)
        if shown >= limits.threshold_c:
            return ScreeningResult("refer", shown, f"at or above {limits.threshold_c} °C")
        return ScreeningResult("pass", shown, f"below {limits.threshold_c} °C")


def _smoothed_crop(thermal: FloatArray, face: Box) -> tuple[FloatArray, tuple[int, int]]:
    """The 3×3 median of the thermal frame over the face box, and the crop's (x, y) origin."""
    height, width = thermal.shape
    left, top = max(0, math.floor(face.left)), max(0, math.floor(face.top))
    right = min(width, max(left + 1, math.ceil(face.right)))
    bottom = min(height, max(top + 1, math.ceil(face.bottom)))
    crop = np.pad(thermal[top:bottom, left:right], 1, mode="edge")
    smoothed = np.median(sliding_window_view(crop, (3, 3)), axis=(-2, -1))
    return smoothed.astype(np.float32), (left, top)


def _patch_max(
    smoothed: FloatArray, origin: tuple[int, int], point: FloatArray, radius: float
) -> float:
    """The hottest value within ``radius`` of ``point`` (image pixels), inside the crop."""
    x, y = float(point[0]) - origin[0], float(point[1]) - origin[1]
    height, width = smoothed.shape
    top, bottom = max(0, math.floor(y - radius)), min(height, math.ceil(y + radius) + 1)
    left, right = max(0, math.floor(x - radius)), min(width, math.ceil(x + radius) + 1)
    if top >= bottom or left >= right:
        return -math.inf  # the corner lies outside the face box: no reading there
    return float(np.max(smoothed[top:bottom, left:right]))
