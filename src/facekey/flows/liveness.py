"""Liveness sessions: create, decide from frames, and bind once to an enrolment or a checkout.

A session is created by an enrol key (no device) or a signed terminal call (bound to that
device), in one of two modes:

* ``challenge`` (enrolment): 2–3 random challenges (:mod:`facekey.liveness.challenges`) that
  must be performed in order, checked from the Face Mesh pose and eye openness;
* ``passive`` (checkout): a burst decided by :meth:`LivenessChecker.check
  <facekey.liveness.session.LivenessChecker.check>` (passive scores fused with temporal and,
  when given, thermal evidence).

One submission of 3–20 frames (capture order, millisecond timestamps strictly increasing over at
most 10 s) decides it. Both modes check that every frame shows the same face (each frame's main
face matches the first at the engine's calibrated FMR of :data:`SAME_FACE_FMR`). A challenge
session is ``live`` only when every challenge was performed, the fused passive/temporal evidence
says live and the head did not move as a plane (neither its landmarks, :data:`RIGID_PLANE`,
nor its pixels, :mod:`facekey.liveness.photometric`); ``spoof`` when that evidence says attack;
``inconclusive`` otherwise. Bad input fails the session (``inconclusive``) and raises its precise
error. A live session keeps its best frame's template (highest quality), transformed and sealed
like stored templates; enrolment and checkout bind it once (:func:`consume`) before it expires.

Lockout: after :data:`LOCK_AFTER` failed sessions (spoof or inconclusive) within
:data:`LOCK_WINDOW` for a device or a subject, new sessions and submissions for them are refused
with :class:`~facekey.errors.LivenessLocked` (HTTP 429 with ``Retry-After``) until the oldest of
those failures leaves the window.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
from sqlalchemy.orm import Session

from facekey.errors import (
    EmptyImage,
    FaceChanged,
    ImageError,
    ImageTooLarge,
    InvalidFrames,
    InvalidRequest,
    LivenessError,
    LivenessLocked,
    LivenessNotPassed,
    LivenessSessionClosed,
    LivenessSessionExpired,
    LivenessSessionNotFound,
    LivenessSessionUsed,
    NotFound,
)
from facekey.flows.auth import Principal
from facekey.flows.decisions import meets
from facekey.flows.devices import DeviceIdentity
from facekey.flows.faces import protected
from facekey.flows.platform import Platform
from facekey.flows.protection import open_session_vector, seal_session_vector
from facekey.flows.search import network_of
from facekey.imaging import decode_image
from facekey.liveness.challenges import (
    LOOK_UP_DEGREES,
    Challenge,
    ChallengeOutcome,
    PoseSample,
    parse_challenges,
    random_challenges,
    verify_challenges,
)
from facekey.liveness.fusion import FUSION_VERSION, SessionDecision, decide_session
from facekey.liveness.photometric import photometric_evidence
from facekey.liveness.temporal import FrameObservation, burst_features
from facekey.liveness.thermal import load_thermal, thermal_evidence
from facekey.pipeline import Face, main_face
from facekey.security.api_keys import Scope
from facekey.store import liveness as store
from facekey.store import subjects
from facekey.store.tables import LivenessSession, Network
from facekey.vision.mesh import eye_aspect_ratio, head_pose
from facekey.vision.types import FloatArray, ImageArray

Mode = Literal["challenge", "passive"]
Result = Literal["live", "spoof", "inconclusive"]
MODES: Final[tuple[Mode, ...]] = ("challenge", "passive")
SESSION_TTL: Final = timedelta(minutes=2)
MIN_FRAMES: Final = 3
MAX_FRAMES: Final = 20
MAX_SPAN_MS: Final = 10_000
LOCK_AFTER: Final = 5
LOCK_WINDOW: Final = timedelta(minutes=3)
#: Every frame's face must match the first frame's at this calibrated false-match rate.
SAME_FACE_FMR: Final = 1e-3
#: Landmark homography residual (over face size) below which a head that turned or nodded by a
#: challenge's angle moved as one plane: a photo or a screen tilted in front of the camera.
#: Real head turns in the development data stay above 0.029; moved stills below 0.007.
RIGID_PLANE: Final = 0.015
_NONCE_BYTES: Final = 16
_THERMAL_VOTES: Final = {"live": 1, "inconclusive": 0, "spoof": -1}


@dataclass(frozen=True)
class FrameSubmission:
    """What a client sends to decide a session: frames (encoded images, capture order), their
    capture times in milliseconds, and an optional thermal frame registered to the last one."""

    frames: list[bytes]
    #: Milliseconds, or their JSON text as a form field carries it (checked by the flow).
    timestamps_ms: Sequence[int] | str | None
    thermal: bytes | None = None


@dataclass(frozen=True)
class SessionView:
    """The columns of a session row the flow needs once the transaction is over."""

    id: str
    network_id: str
    mode: Mode
    challenges: tuple[Challenge, ...]
    device_id: str | None

    @classmethod
    def of(cls, row: LivenessSession) -> SessionView:
        mode: Mode = "challenge" if row.mode == "challenge" else "passive"
        challenges = parse_challenges(store.challenges_of(row))
        return cls(row.id, row.network_id, mode, challenges, row.device_id)


@dataclass
class Analysis:
    """A session's result, its numeric evidence, why it is not live, and its best face."""

    result: Result
    evidence: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    outcomes: list[ChallengeOutcome] = field(default_factory=list)
    best: Face | None = None


@dataclass(frozen=True)
class BoundFace:
    """A live session's best-frame template (protected, as stored) and its quality."""

    session_id: str
    vector: FloatArray
    quality: float
    quality_ok: bool


# ---------------------------------------------------------------------- create


def create_session(
    platform: Platform,
    principal: Principal,
    device: DeviceIdentity | None,
    mode: str,
    *,
    subject_id: str | None = None,
    challenges: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Open a session; ``challenges`` may be given (tests, kiosks with their own prompts)."""
    principal.require(Scope.ENROL, Scope.TERMINAL)
    chosen = _challenges_for(mode, challenges)
    now = datetime.now(UTC)
    with platform.database.session() as session:
        store.expire_sessions(session, now=now)
    device_id = device.device_id if device else None
    with platform.database.session() as session:
        if subject_id is not None:
            _check_subject(session, principal.network_id, subject_id)
        check_lockout(session, device_id=device_id, subject_id=subject_id, now=now)
        row = store.create_session(
            session,
            network_id=principal.network_id,
            mode=mode,
            nonce=secrets.token_urlsafe(_NONCE_BYTES),
            challenges=chosen,
            expires_at=now + SESSION_TTL,
            device_id=device_id,
            subject_id=subject_id,
            created_at=now,
        )
        return {
            "session_id": row.id,
            "mode": row.mode,
            "nonce": row.nonce,
            "expires_at": row.expires_at.isoformat(),
            "challenges": list(chosen),
        }


def _challenges_for(mode: str, challenges: Sequence[str] | None) -> tuple[Challenge, ...]:
    if mode not in MODES:
        raise InvalidRequest(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "passive":
        if challenges:
            raise InvalidRequest("a passive session has no challenges")
        return ()
    if challenges is None:
        return random_challenges()
    try:
        chosen = parse_challenges(challenges)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    if not chosen:
        raise InvalidRequest("a challenge session needs at least one challenge")
    return chosen


def _check_subject(session: Session, network_id: str, subject_id: str) -> None:
    subject = subjects.get_subject(session, network_id=network_id, subject_id=subject_id)
    if subject is None or subject.status != "active":
        raise NotFound(f"no subject {subject_id}")


def check_lockout(
    session: Session, *, device_id: str | None, subject_id: str | None, now: datetime
) -> None:
    """Raise :class:`LivenessLocked` when the device or the subject failed too often lately."""
    for kind, key in (("device", device_id), ("subject", subject_id)):
        if key is None:
            continue
        times = store.failure_times(session, since=now - LOCK_WINDOW, **{f"{kind}_id": key})
        if len(times) >= LOCK_AFTER:
            free_at = times[LOCK_AFTER - 1] + LOCK_WINDOW
            wait = max(1, math.ceil((free_at - now).total_seconds()))
            raise LivenessLocked(
                f"{len(times)} failed liveness sessions for this {kind} in the last "
                f"{int(LOCK_WINDOW.total_seconds() // 60)} minutes; retry in {wait} s",
                retry_after_s=wait,
            )


# ---------------------------------------------------------------------- frames


def submit_frames(
    platform: Platform,
    principal: Principal,
    device: DeviceIdentity | None,
    session_id: str,
    submission: FrameSubmission,
) -> dict[str, Any]:
    """Decide an open session from its frames; bad input fails it and raises precisely."""
    principal.require(Scope.ENROL, Scope.TERMINAL)
    view = _open_session(platform, principal, device, session_id)
    try:
        analysis = analyse(platform, view, submission)
    except (ImageError, LivenessError) as exc:
        _finish(platform, view, Analysis("inconclusive", {"rejected_input": 1}, str(exc)))
        raise
    _finish(platform, view, analysis)
    evidence: dict[str, Any] = dict(analysis.evidence)
    evidence["reason"] = analysis.reason
    evidence["challenges"] = [
        {"challenge": o.challenge, "passed": o.passed, "frame": o.frame, "amount": o.amount}
        for o in analysis.outcomes
    ]
    return {"session_id": view.id, "result": analysis.result, "evidence": evidence}


def _open_session(
    platform: Platform, principal: Principal, device: DeviceIdentity | None, session_id: str
) -> SessionView:
    """The caller's open, unexpired session (expiring it when it is past due)."""
    now = datetime.now(UTC)
    with platform.database.session() as session:
        row = _callers_session(session, principal, device, session_id)
        if row.status == "open" and row.expires_at <= now:
            store.expire_sessions(session, now=now)
            row.status = "expired"
        if row.status == "expired":
            raise LivenessSessionExpired(f"liveness session {session_id} has expired")
        if row.status != "open":
            raise LivenessSessionClosed(f"liveness session {session_id} already has a result")
        check_lockout(session, device_id=row.device_id, subject_id=row.subject_id, now=now)
        return SessionView.of(row)


def _callers_session(
    session: Session, principal: Principal, device: DeviceIdentity | None, session_id: str
) -> LivenessSession:
    row = store.get_session(session, network_id=principal.network_id, session_id=session_id)
    if row is None or row.device_id != (device.device_id if device else None):
        raise LivenessSessionNotFound(f"no liveness session {session_id}")
    return row


def _finish(platform: Platform, view: SessionView, analysis: Analysis) -> None:
    sealed = _sealed_best(platform, view, analysis) if analysis.result == "live" else None
    with platform.database.session() as session:
        done = store.finish_session(
            session,
            session_id=view.id,
            status=analysis.result,
            evidence=analysis.evidence,
            finished_at=datetime.now(UTC),
            sealed_best_template=sealed,
        )
    if not done:
        raise LivenessSessionClosed(f"liveness session {view.id} was decided by another request")


def _sealed_best(platform: Platform, view: SessionView, analysis: Analysis) -> bytes:
    if analysis.best is None:  # pragma: no cover - a live analysis always has a best face
        raise ValueError("a live session needs a best face")
    network = network_of(platform, view.network_id)
    reader = platform.readers.get(network.engine)
    vector = protected(platform.vault.transform(network, reader.info), analysis.best)
    return seal_session_vector(
        platform.vault.liveness_key(network),
        vector,
        session_id=view.id,
        engine_key=reader.engine_key,
    )


# ---------------------------------------------------------------------- analysis


def analyse(platform: Platform, view: SessionView, submission: FrameSubmission) -> Analysis:
    """The session's result from its frames (no storage). Raises on bad input."""
    timestamps = parse_timestamps(submission.timestamps_ms)
    check_timing(len(submission.frames), timestamps)
    images = decode_frames(platform, submission.frames)
    thermal = _thermal(platform, submission.thermal)
    faces = [_main_face(platform, image) for image in images]
    missing = [n for n, face in enumerate(faces, start=1) if face is None]
    base = {
        "frames": float(len(images)),
        "span_ms": float(timestamps[-1] - timestamps[0]),
    }
    if missing:
        return Analysis(
            "inconclusive",
            base | {"frames_without_face": float(len(missing))},
            f"no face in frame {missing[0]}",
        )
    found = [face for face in faces if face is not None]
    base |= same_face(platform, found) | _best_face_evidence(platform, found)
    if view.mode == "passive":
        analysis = _passive(platform, images, thermal)
    else:
        analysis = _challenge(platform, view.challenges, images, thermal)
    analysis.evidence = base | analysis.evidence
    analysis.best = _best_face(platform, found)
    return analysis


def parse_timestamps(value: Sequence[int] | str | None) -> list[int]:
    """Timestamps as given, or parsed from JSON text: a list of integer milliseconds."""
    if value is None:
        raise InvalidFrames("send timestamps: a JSON list of capture times in milliseconds")
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise InvalidFrames("timestamps must be a JSON list of integer milliseconds") from exc
    if not isinstance(parsed, list | tuple) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in parsed
    ):
        raise InvalidFrames("timestamps must be a JSON list of integer milliseconds")
    return [int(t) for t in parsed]


def check_timing(count: int, timestamps_ms: Sequence[int]) -> None:
    """Frame count in range; one timestamp per frame, strictly increasing, within the span."""
    if not MIN_FRAMES <= count <= MAX_FRAMES:
        raise InvalidFrames(f"send between {MIN_FRAMES} and {MAX_FRAMES} frames, not {count}")
    if len(timestamps_ms) != count:
        raise InvalidFrames(f"send one timestamp per frame: {len(timestamps_ms)} for {count}")
    for index in range(1, count):
        if timestamps_ms[index] <= timestamps_ms[index - 1]:
            raise InvalidFrames(
                f"timestamps must increase strictly in capture order: frame {index + 1} "
                f"({timestamps_ms[index]} ms) is not after frame {index} "
                f"({timestamps_ms[index - 1]} ms)"
            )
    span = timestamps_ms[-1] - timestamps_ms[0]
    if span > MAX_SPAN_MS:
        raise InvalidFrames(f"the frames span {span} ms; at most {MAX_SPAN_MS} ms")


def decode_frames(platform: Platform, frames: Sequence[bytes]) -> list[ImageArray]:
    """Every frame decoded under the image limits; the error names the frame."""
    images = []
    for number, data in enumerate(frames, start=1):
        try:
            images.append(decode_image(data, platform.settings.images))
        except ImageError as exc:
            raise type(exc)(f"frame {number}: {exc}") from exc
    return images


def _thermal(platform: Platform, data: bytes | None) -> FloatArray | None:
    if data is None:
        return None
    limit = platform.settings.images.max_bytes
    if len(data) > limit:
        raise ImageTooLarge(f"thermal: the frame has more than {limit} bytes")
    if not data:
        raise EmptyImage("thermal: the frame is empty (0 bytes)")
    return load_thermal(data)


def _main_face(platform: Platform, image: ImageArray) -> Face | None:
    found = platform.reader.faces_in(image)
    return main_face(found, image.shape) if found else None


def same_face(platform: Platform, faces: Sequence[Face]) -> dict[str, float]:
    """The lowest similarity of a frame's face to the first; :class:`FaceChanged` when one
    does not match it at :data:`SAME_FACE_FMR`."""
    first = faces[0].template
    lowest = 1.0
    for number, face in enumerate(faces[1:], start=2):
        score = first.similarity(face.template)
        lowest = min(lowest, score)
        calibration = platform.calibration(platform.reader.info)
        if calibration is not None and not meets(calibration.unmasked, score, SAME_FACE_FMR):
            raise FaceChanged(f"frame {number} does not show the face of frame 1")
    return {"same_face_min": round(lowest, 4)}


def _best_face(platform: Platform, faces: Sequence[Face]) -> Face:
    """The highest-quality face, preferring faces that pass the quality gate."""
    return max(
        faces, key=lambda f: (not platform.quality_policy.problems(f.quality), f.quality.score)
    )


def _best_face_evidence(platform: Platform, faces: Sequence[Face]) -> dict[str, float]:
    best = _best_face(platform, faces)
    return {
        "best_frame": float(faces.index(best) + 1),
        "best_quality": round(best.quality.score, 4),
        "best_quality_ok": float(not platform.quality_policy.problems(best.quality)),
    }


def _passive(
    platform: Platform, images: Sequence[ImageArray], thermal: FloatArray | None
) -> Analysis:
    decision = platform.liveness.use(lambda checker: checker.check(images, thermal))
    reason = None if decision.result == "live" else _fusion_reason(decision)
    return Analysis(decision.result, numeric_evidence(decision), reason)


def _challenge(
    platform: Platform,
    challenges: Sequence[Challenge],
    images: Sequence[ImageArray],
    thermal: FloatArray | None,
) -> Analysis:
    observed = platform.liveness.use(lambda checker: [checker.observe(i) for i in images])
    if any(o is None for o in observed):
        lost = next(n for n, o in enumerate(observed, start=1) if o is None)
        return Analysis("inconclusive", {}, f"the face mesh lost the face in frame {lost}")
    observations = [o for o in observed if o is not None]
    evidence = None
    if thermal is not None:
        last = observations[-1]
        evidence = thermal_evidence(thermal, images[-1].shape, last.points, last.box)
    photometric = photometric_evidence(images, observations)
    fused = decide_session(burst_features(observations), evidence, photometric=photometric)
    samples = pose_samples(observations)
    outcomes = verify_challenges(challenges, samples)
    result, reason = challenge_result(fused, samples, outcomes)
    numbers = numeric_evidence(fused) | _pose_evidence(samples, outcomes)
    return Analysis(result, numbers, reason, outcomes)


def pose_samples(observations: Sequence[FrameObservation]) -> list[PoseSample]:
    """Yaw, pitch and mean eye openness of each observation."""
    samples = []
    for observation in observations:
        yaw, pitch, _ = head_pose(observation.points)
        ear = float(np.mean(eye_aspect_ratio(observation.points)))
        samples.append(PoseSample(yaw, pitch, ear))
    return samples


def challenge_result(
    fused: SessionDecision, samples: Sequence[PoseSample], outcomes: Sequence[ChallengeOutcome]
) -> tuple[Result, str | None]:
    """Live only when every challenge passed and the fused evidence says live."""
    if fused.result == "spoof":
        return "spoof", _fusion_reason(fused)
    turned = max(_spread([s.yaw for s in samples]), _spread([s.pitch for s in samples]))
    if turned >= LOOK_UP_DEGREES and fused.evidence.get("nonplanarity", 1.0) < RIGID_PLANE:
        return "spoof", "the face turned as one rigid plane (a photo or a screen)"
    missed = next((o for o in outcomes if not o.passed), None)
    if missed is not None:
        return "inconclusive", f"challenge {missed.challenge} was not performed (in order)"
    if fused.result != "live":
        return "inconclusive", _fusion_reason(fused)
    return "live", None


def _spread(values: Sequence[float]) -> float:
    return float(max(values) - min(values)) if values else 0.0


def _fusion_reason(decision: SessionDecision) -> str:
    thermal = decision.evidence.get("thermal")
    if isinstance(thermal, Mapping) and thermal.get("vote") == "spoof":
        return "the thermal frame shows no warm skin"
    reason = decision.evidence.get("reason")
    if isinstance(reason, str):
        return reason
    return f"passive and temporal evidence: {decision.result} (score {decision.score:.2f})"


def numeric_evidence(decision: SessionDecision) -> dict[str, float]:
    """The numbers of a fused decision's evidence (booleans as 0/1, thermal flattened)."""
    numbers: dict[str, float] = {"score": round(decision.score, 4)}
    if FUSION_VERSION.isdigit():
        numbers["fusion_version"] = float(FUSION_VERSION)
    for name, value in decision.evidence.items():
        if isinstance(value, Mapping):
            numbers |= {f"{name}_{k}": v for k, v in _numbers(value).items()}
        elif isinstance(value, bool | int | float):
            numbers |= _numbers({name: value})
    return numbers


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in values.items():
        if name == "vote" and value in _THERMAL_VOTES:
            out[name] = float(_THERMAL_VOTES[value])
        elif isinstance(value, bool | int | float) and math.isfinite(float(value)):
            out[name] = round(float(value), 4)
    return out


def _pose_evidence(
    samples: Sequence[PoseSample], outcomes: Sequence[ChallengeOutcome]
) -> dict[str, float]:
    return {
        "yaw_range": round(_spread([s.yaw for s in samples]), 2),
        "pitch_range": round(_spread([s.pitch for s in samples]), 2),
        "challenges_passed": float(sum(o.passed for o in outcomes)),
        "challenges_total": float(len(outcomes)),
    }


# ---------------------------------------------------------------------- binding


def live_face(
    platform: Platform,
    network: Network,
    session_id: str,
    *,
    device_id: str | None,
    mode: Mode | None = None,
) -> BoundFace:
    """The best-frame template of the caller's live, unused, unexpired session.

    ``device_id`` is the calling terminal (None for an enrol key): a session is used only by
    whoever created it. ``mode`` restricts the session's mode (enrolment needs ``challenge``).
    Nothing is marked here: :func:`consume` does that in the caller's write transaction.
    """
    now = datetime.now(UTC)
    with platform.database.session() as session:
        row = store.get_session(session, network_id=network.id, session_id=session_id)
        if row is None or row.device_id != device_id:
            raise LivenessSessionNotFound(f"no liveness session {session_id}")
        _check_usable(row, now, mode)
        sealed, evidence = row.sealed_best_template, store.evidence_of(row)
    if sealed is None:  # pragma: no cover - a live, unexpired session keeps its template
        raise LivenessNotPassed(f"liveness session {session_id} holds no template")
    vector = open_session_vector(
        platform.vault.liveness_key(network),
        sealed,
        session_id=session_id,
        engine_key=platform.readers.get(network.engine).engine_key,
    )
    quality = float(evidence.get("best_quality", 0.0))
    return BoundFace(session_id, vector, quality, bool(evidence.get("best_quality_ok", 0.0)))


def _check_usable(row: LivenessSession, now: datetime, mode: Mode | None) -> None:
    if row.status == "used" or row.used_at is not None:
        raise LivenessSessionUsed(f"liveness session {row.id} was already used")
    if row.status == "expired" or row.expires_at <= now:
        raise LivenessSessionExpired(f"liveness session {row.id} has expired")
    if row.status == "open":
        raise LivenessNotPassed(f"liveness session {row.id} has no frames yet")
    if row.status != "live":
        raise LivenessNotPassed(f"liveness session {row.id} ended {row.status}, not live")
    if mode is not None and row.mode != mode:
        raise LivenessNotPassed(f"this needs a {mode} liveness session, not a {row.mode} one")


def consume(session: Session, session_id: str) -> None:
    """Mark a live session used inside the caller's transaction (atomic, single use): when
    the caller's transaction fails, the session stays usable."""
    if not store.mark_used(session, session_id=session_id, now=datetime.now(UTC)):
        raise LivenessSessionUsed(
            f"liveness session {session_id} was used or expired meanwhile; start a new one"
        )
