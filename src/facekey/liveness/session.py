"""Passive liveness bursts: frames in, observations and one fused decision out.

:class:`LivenessChecker` holds a face detector, the Face Mesh landmarker, a passive scorer and
the shipped operating point, each loaded on first use. A burst is observed cheaply
(:meth:`LivenessChecker.observe_burst`):

* the face is **detected once**, in the first frame where the detector finds it, and then
  **tracked**: each later frame's Face Mesh runs in a region placed from the previous frame's
  landmarks (as MediaPipe's own tracking does); the detector runs again only when the mesh loses
  the face (presence < :data:`MIN_PRESENCE`). The box the passive models crop around is the
  detector's box carried over by the landmarks (its offset and scale against the landmarks'
  box, measured where it was detected);
* the **passive pair runs on a subset** of at most :data:`SCORED_FRAMES` frames, one per equal
  stretch of the burst (spread in time, so motion is sampled), the sharpest of its stretch
  (quality), in one batch per model.

:meth:`LivenessChecker.check` decides a burst with :func:`~facekey.liveness.fusion.decide_burst`.
One instance per thread (the landmarker is not thread-safe).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from facekey.imaging import read_image_file
from facekey.liveness.fusion import Operating, SessionDecision, decide_burst
from facekey.liveness.passive import MiniFasNetPair, PassiveScorer
from facekey.liveness.temporal import FrameObservation
from facekey.liveness.threshold import PassiveThreshold, load_threshold
from facekey.vision.detectors import Detector, make_detector
from facekey.vision.mesh import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, FaceMesh, MeshResult, face_roi
from facekey.vision.types import Box, FloatArray, ImageArray

DEFAULT_DETECTORS: Final = ("blazeface-short", "hog1")
#: The most frames one passive or challenge submission may carry.
MAX_FRAMES: Final = 20
#: The passive pair scores at most this many frames of a burst.
SCORED_FRAMES: Final = 6
#: Face Mesh presence below which the tracked face counts as lost (the detector runs again).
MIN_PRESENCE: Final = 0.5
#: Off-centre shift (share of the face box) of a tracked face beyond which its region is
#: placed again from its own landmarks and the mesh run once more.
RECENTRE: Final = 0.02


@dataclass(frozen=True)
class BoxFromMesh:
    """The detector's box relative to the landmarks' box: centre offset and size ratio."""

    dx: float
    dy: float
    sx: float
    sy: float

    @classmethod
    def measure(cls, detected: Box, mesh: Box) -> BoxFromMesh:
        (cx, cy), (mx, my) = detected.center, mesh.center
        w, h = max(mesh.width, 1.0), max(mesh.height, 1.0)
        return cls((cx - mx) / w, (cy - my) / h, detected.width / w, detected.height / h)

    def apply(self, mesh: Box) -> Box:
        (mx, my), w, h = mesh.center, mesh.width, mesh.height
        cx, cy = mx + self.dx * w, my + self.dy * h
        half_w, half_h = self.sx * w / 2, self.sy * h / 2
        return Box(cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def eye_keypoints(points: FloatArray) -> FloatArray:
    """The two outer eye corners in the detector's keypoint order (image left first)."""
    return np.asarray(points[[RIGHT_EYE_OUTER, LEFT_EYE_OUTER], :2], dtype=np.float32)


def sharpness(image: ImageArray, box: Box) -> float:
    """Mean absolute Laplacian of the face's grey levels (every 2nd pixel): blur lowers it."""
    height, width = image.shape[:2]
    left, top = max(0, int(box.left)), max(0, int(box.top))
    right, bottom = min(width, int(box.right)), min(height, int(box.bottom))
    grey = image[top:bottom:2, left:right:2].astype(np.float32).mean(axis=2)
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(np.mean(np.abs(lap)))


def pick_frames(qualities: Sequence[float], count: int = SCORED_FRAMES) -> list[int]:
    """One frame per equal stretch of the burst, the best of its stretch (NaN: no face)."""
    available = [i for i, q in enumerate(qualities) if not math.isnan(q)]
    if len(available) <= count:
        return available
    picked = []
    for stretch in np.array_split(np.array(available), count):
        picked.append(int(max(stretch, key=lambda i: qualities[int(i)])))
    return picked


class LivenessChecker:
    """Detector + Face Mesh + passive scorer + operating point; observes and decides bursts."""

    def __init__(
        self,
        detector: Detector | None = None,
        scorer: PassiveScorer | None = None,
        mesh: FaceMesh | None = None,
        threshold: PassiveThreshold | None = None,
    ) -> None:
        self.detector = detector or make_detector(DEFAULT_DETECTORS)
        self.scorer: PassiveScorer = scorer or MiniFasNetPair()
        self.mesh = mesh or FaceMesh()
        self.threshold = threshold or load_threshold(self.scorer.name, self.scorer.version)

    @property
    def operating(self) -> Operating:
        """The burst decision's operating point (from the shipped threshold file)."""
        return Operating.of(self.threshold)

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

    def track(self, frames: Sequence[ImageArray]) -> list[FrameObservation | None]:
        """Box and landmarks of the face in every frame (None where it is lost), detecting
        once and tracking; passive scores are NaN (see :meth:`observe_burst`)."""
        tracked: list[FrameObservation | None] = []
        previous: MeshResult | None = None
        relation: BoxFromMesh | None = None
        for image in frames:
            mesh = None
            if previous is not None and relation is not None:
                mesh = self._follow(image, previous, relation)
            if mesh is None:
                mesh, relation = self._detect(image)
            if mesh is None or relation is None:
                tracked.append(None)
                previous = None
                continue
            tracked.append(FrameObservation(relation.apply(mesh.box), mesh.points, math.nan))
            previous = mesh
        return tracked

    def _follow(
        self, image: ImageArray, previous: MeshResult, relation: BoxFromMesh
    ) -> MeshResult | None:
        """The mesh in the region placed from the previous frame's landmarks; placed again
        from its own landmarks when the face moved off that region's centre (a lagging region
        makes the landmarks noisy, which would blur the planarity measures)."""
        placed = relation.apply(previous.box)
        mesh = self.mesh.landmarks_in(image, face_roi(placed, eye_keypoints(previous.points)))
        if mesh.presence < MIN_PRESENCE:
            return None
        found = relation.apply(mesh.box)
        (px, py), (fx, fy) = placed.center, found.center
        if math.hypot(fx - px, fy - py) > RECENTRE * max(found.width, 1.0):
            again = self.mesh.landmarks_in(image, face_roi(found, eye_keypoints(mesh.points)))
            mesh = again if again.presence >= MIN_PRESENCE else mesh
        return mesh

    def _detect(self, image: ImageArray) -> tuple[MeshResult | None, BoxFromMesh | None]:
        found = self.detector.detect(image)
        if not found:
            return None, None
        face = found[0]
        mesh = self.mesh.landmarks(image, face.box, face.keypoints)
        return mesh, BoxFromMesh.measure(face.box, mesh.box)

    def locate(self, frames: Sequence[ImageArray]) -> list[FrameObservation | None]:
        """Box and landmarks of the face in every frame, each detected anew (more exact than
        :meth:`track` when the head turns fast, for challenges); passive scores are NaN."""
        located: list[FrameObservation | None] = []
        for image in frames:
            mesh, relation = self._detect(image)
            if mesh is None or relation is None:
                located.append(None)
            else:
                located.append(FrameObservation(relation.apply(mesh.box), mesh.points, math.nan))
        return located

    def observe_burst(
        self, frames: Sequence[ImageArray], scored: int = SCORED_FRAMES, *, track: bool = True
    ) -> list[FrameObservation | None]:
        """:meth:`track` (or :meth:`locate`), then the passive pair on at most ``scored``
        frames (:func:`pick_frames`); the others keep a NaN passive score."""
        tracked = self.track(frames) if track else self.locate(frames)
        qualities = [
            sharpness(image, o.box) if o is not None else math.nan
            for image, o in zip(frames, tracked, strict=True)
        ]
        chosen = pick_frames(qualities, scored)
        scores = self.scorer_many([(frames[i], _box_of(tracked[i])) for i in chosen])
        for index, score in zip(chosen, scores, strict=True):
            seen = _box_of_obs(tracked[index])
            tracked[index] = FrameObservation(seen.box, seen.points, score)
        return tracked

    def scorer_many(self, faces: Sequence[tuple[ImageArray, Box]]) -> list[float]:
        """The scorer's batch call when it has one."""
        many: Callable[[Sequence[tuple[ImageArray, Box]]], list[float]] | None = getattr(
            self.scorer, "score_many", None
        )
        if many is not None:
            return many(faces)
        return [self.scorer.score(image, box) for image, box in faces]

    def check(
        self, frames: Sequence[ImageArray], thermal: FloatArray | None = None
    ) -> SessionDecision:
        """Decide a burst of 3–20 frames (capture order); too few faces is inconclusive.

        ``thermal`` (°C, see :func:`~facekey.liveness.thermal.load_thermal`) is registered to
        the last frame of the burst.
        """
        if len(frames) > MAX_FRAMES:
            raise ValueError(f"a passive session has at most {MAX_FRAMES} frames")
        return self.decide(frames, self.observe_burst(frames), thermal)

    def decide(
        self,
        frames: Sequence[ImageArray],
        observed: Sequence[FrameObservation | None],
        thermal: FloatArray | None = None,
        *,
        thorough: bool = False,
    ) -> SessionDecision:
        """The fused decision of frames already observed (:meth:`observe_burst`); ``thorough``
        (challenges) measures the photometric veto even when the burst is inconclusive."""
        seen = [(f, o) for f, o in zip(frames, observed, strict=True) if o is not None]
        images = [f for f, _ in seen] or list(frames)
        return decide_burst(
            images,
            [o for _, o in seen],
            self.operating,
            thermal,
            relocate=self._relocate,
            thorough=thorough,
        )

    def _relocate(self, image: ImageArray) -> FrameObservation | None:
        located = self.locate([image])
        return located[0]


def _box_of(observation: FrameObservation | None) -> Box:
    return _box_of_obs(observation).box


def _box_of_obs(observation: FrameObservation | None) -> FrameObservation:
    if observation is None:  # pragma: no cover - pick_frames only picks frames with a face
        raise ValueError("no face in a picked frame")
    return observation


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
