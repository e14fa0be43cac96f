"""Passive liveness sessions: frames in, one fused decision out.

:class:`LivenessChecker` holds a face detector, the Face Mesh landmarker and a passive scorer,
each loaded on first use. :meth:`LivenessChecker.observe` gives one frame's
:class:`~facekey.liveness.temporal.FrameObservation` (or None when no face is found), and
:meth:`LivenessChecker.check` decides a burst with :func:`~facekey.liveness.fusion.decide_session`.
One instance per thread (the landmarker is not thread-safe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from facekey.imaging import read_image_file
from facekey.liveness.fusion import SessionDecision, decide_session, inconclusive
from facekey.liveness.passive import MiniFasNetPair, PassiveScorer
from facekey.liveness.photometric import photometric_evidence
from facekey.liveness.temporal import MIN_FRAMES, FrameObservation, burst_features
from facekey.liveness.thermal import thermal_evidence
from facekey.vision.detectors import Detector, make_detector
from facekey.vision.mesh import FaceMesh
from facekey.vision.types import FloatArray, ImageArray

DEFAULT_DETECTORS = ("blazeface-short", "hog1")
MAX_FRAMES = 20


class LivenessChecker:
    """Detector + Face Mesh + passive scorer; decides passive bursts."""

    def __init__(
        self,
        detector: Detector | None = None,
        scorer: PassiveScorer | None = None,
        mesh: FaceMesh | None = None,
    ) -> None:
        self.detector = detector or make_detector(DEFAULT_DETECTORS)
        self.scorer: PassiveScorer = scorer or MiniFasNetPair()
        self.mesh = mesh or FaceMesh()

    def passive_score(self, image: ImageArray) -> float:
        """The passive live probability of the main face, NaN when no face is found."""
        found = self.detector.detect(image)
        return self.scorer.score(image, found[0].box) if found else float("nan")

    def observe(self, image: ImageArray) -> FrameObservation | None:
        """Box, landmarks and passive score of the main face; None when there is no face."""
        found = self.detector.detect(image)
        if not found:
            return None
        face = found[0]
        landmarks = self.mesh.landmarks(image, face.box, face.keypoints)
        return FrameObservation(face.box, landmarks.points, self.scorer.score(image, face.box))

    def check(
        self, frames: Sequence[ImageArray], thermal: FloatArray | None = None
    ) -> SessionDecision:
        """Decide a burst of 3–20 frames (capture order); too few faces is inconclusive.

        ``thermal`` (°C, see :func:`~facekey.liveness.thermal.load_thermal`) is registered to
        the last frame of the burst.
        """
        if len(frames) > MAX_FRAMES:
            raise ValueError(f"a passive session has at most {MAX_FRAMES} frames")
        seen = [(f, o) for f, o in zip(frames, map(self.observe, frames), strict=True) if o]
        observations = [o for _, o in seen]
        if len(observations) < MIN_FRAMES:
            return inconclusive(f"a face in {len(observations)} of {len(frames)} frames")
        evidence = None
        if thermal is not None:
            last = observations[-1]
            evidence = thermal_evidence(thermal, frames[-1].shape, last.points, last.box)
        photometric = photometric_evidence([f for f, _ in seen], observations)
        return decide_session(burst_features(observations), evidence, photometric=photometric)


def score_files(
    paths: Iterable[Path],
    score: Callable[[ImageArray], float],
    advance: Callable[[int], None] | None = None,
) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    """``score`` of each image file (NaN where it finds no face), with optional progress."""
    values = []
    for path in paths:
        values.append(score(read_image_file(path)))
        if advance is not None:
            advance(1)
    return np.array(values, dtype=np.float64)
