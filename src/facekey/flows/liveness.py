"""Liveness sessions: create, decide from frames, and bind once to an enrolment or a checkout.

This module is the sessions' lifecycle (storage, expiry, device binding, lockout, single use);
the liveness rules are in :mod:`facekey.liveness` (one fusion entry point,
:meth:`LivenessChecker.decide <facekey.liveness.session.LivenessChecker.decide>`, for passive
bursts, challenge sessions and ``facekey eval liveness`` alike).

A session is created by an enrol key (no device) or a signed terminal call (bound to that
device), in one of two modes:

* ``challenge`` (enrolment): 2–3 random challenges (:mod:`facekey.liveness.challenges`) that
  must be performed in order, checked from the Face Mesh pose and eye openness: always asked;
* ``passive`` (checkout): a burst decided from passive scores, temporal and, when given,
  thermal evidence. When that burst is ``inconclusive`` (not clearly live, not clearly an
  attack) the session **steps up**: the answer names one random challenge chosen by the server
  (turn left, turn right or look up) and the session stays open for exactly one more
  submission: the challenge frames, spanning at most :data:`STEP_UP_SPAN_MS`, of the same face.

A submission is 3–20 frames (capture order, millisecond timestamps strictly increasing over at
most 10 s). Every frame must show the same face (each frame's main face matches the first at the
engine's calibrated FMR of :data:`SAME_FACE_FMR`; the challenge frames of a step-up match the
first burst's best face). Bad input fails the session (``inconclusive``) and raises its precise
error. A live session keeps its best frame's template (highest quality) and a few more chosen
for quality and diversity (five for a challenge session, which enrols; three for a passive one,
a checkout's probe frames), transformed and sealed
like stored templates; enrolment and checkout bind it once (:func:`consume`) before it expires.

Lockout (:data:`facekey.store.lockouts.LIVENESS`): after five consecutive failed sessions (spoof
or inconclusive) of a device or a subject, new sessions and submissions for them are refused
with :class:`~facekey.errors.LivenessLocked` (HTTP 429 with ``Retry-After``) for three minutes,
twice as long after each further failure, up to an hour; a live session resets the subject's
count. A step-up is not a failure; its outcome is. A device locked here cannot check out either.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
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
from facekey.flows.platform import FaceReader, Platform
from facekey.flows.protection import open_session_vector, seal_session_vector
from facekey.flows.search import network_of
from facekey.imaging import decode_image
from facekey.liveness.challenges import (
    Challenge,
    ChallengeOutcome,
    decide_challenges,
    parse_challenges,
    pose_evidence,
    random_challenges,
    step_up_challenge,
)
from facekey.liveness.fusion import Result, numeric_evidence, reason_of
from facekey.liveness.session import MAX_FRAMES
from facekey.liveness.thermal import load_thermal
from facekey.pipeline import Face, main_face
from facekey.security.api_keys import Scope
from facekey.store import liveness as store
from facekey.store import lockouts, subjects
from facekey.store.tables import LivenessSession, Network
from facekey.templates import choose_diverse, cosine
from facekey.vision.types import FloatArray, ImageArray

Mode = Literal["challenge", "passive"]
MODES: Final[tuple[Mode, ...]] = ("challenge", "passive")
SESSION_TTL: Final = timedelta(minutes=2)
MIN_FRAMES: Final = 3
MAX_SPAN_MS: Final = 10_000
#: The challenge frames of a step-up span at most this long (the challenge takes ≤ 3 s).
STEP_UP_SPAN_MS: Final = 3_000
#: Every frame's face must match the first frame's at this calibrated false-match rate.
SAME_FACE_FMR: Final = 1e-3
#: Templates a live session keeps: up to five for an enrolment (a challenge session), up to
#: three as a checkout probe's frames (each counts in the union bound: docs/multi-frame.md).
KEPT_TEMPLATES: Final[dict[Mode, int]] = {"challenge": 5, "passive": 3}
_NONCE_BYTES: Final = 16


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
    subject_id: str | None
    #: A passive session waiting for its step-up challenge's frames: the first burst's
    #: sealed best template (to check that the same face performs the challenge).
    step_up_template: bytes | None = None

    @classmethod
    def of(cls, row: LivenessSession) -> SessionView:
        mode: Mode = "challenge" if row.mode == "challenge" else "passive"
        challenges = parse_challenges(store.challenges_of(row))
        stepped = row.sealed_best_template if mode == "passive" and challenges else None
        return cls(row.id, row.network_id, mode, challenges, row.device_id, row.subject_id, stepped)

    @property
    def stepping_up(self) -> bool:
        """Whether this submission answers a step-up challenge."""
        return self.mode == "passive" and bool(self.challenges)


@dataclass
class Analysis:
    """A session's result, its numeric evidence, why it is not live, and its best face.

    ``decided``: the liveness evidence was measured (every frame had a face), so an
    inconclusive passive burst may step up to a challenge."""

    result: Result
    evidence: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    outcomes: tuple[ChallengeOutcome, ...] = ()
    #: The faces a live session keeps: the best, then others chosen for quality and diversity.
    chosen: tuple[Face, ...] = ()
    decided: bool = False

    @property
    def best(self) -> Face | None:
        return self.chosen[0] if self.chosen else None


@dataclass(frozen=True)
class BoundFace:
    """A live session's templates (protected, as stored; the best frame first, then frames
    chosen for diversity), and the best frame's quality."""

    session_id: str
    vectors: FloatArray
    quality: float
    quality_ok: bool

    @property
    def vector(self) -> FloatArray:
        """The best frame's template."""
        best: FloatArray = self.vectors[0]
        return best


class OpenedSession(BaseModel):
    """A new liveness session: its id, nonce, expiry and (challenge mode) its challenges."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    mode: Mode
    nonce: str
    expires_at: str
    challenges: list[Challenge] = Field(description="to perform in this order (challenge mode)")


class ChallengeResult(BaseModel):
    """Whether a challenge was performed, at which frame, and by how much."""

    model_config = ConfigDict(frozen=True)

    challenge: Challenge
    passed: bool
    frame: int | None
    amount: float


class LivenessEvidence(BaseModel):
    """Why: the numeric measures of the frames (by name), the reason a session is not live,
    and each challenge's outcome."""

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, float] = Field(init=False)

    reason: str | None
    challenges: list[ChallengeResult]


class LivenessAnswer(BaseModel):
    """A session's result. An inconclusive passive burst steps up: challenge names what
    to perform and challenge_span_ms how long its frames may span (absent otherwise)."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    result: Result
    evidence: LivenessEvidence
    challenge: Challenge | None = None
    challenge_span_ms: int | None = None


# ---------------------------------------------------------------------- create


def create_session(
    platform: Platform,
    principal: Principal,
    device: DeviceIdentity | None,
    mode: str,
    *,
    subject_id: str | None = None,
    challenges: Sequence[str] | None = None,
) -> OpenedSession:
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
        return OpenedSession(
            session_id=row.id,
            mode="challenge" if row.mode == "challenge" else "passive",
            nonce=row.nonce,
            expires_at=row.expires_at.isoformat(),
            challenges=list(chosen),
        )


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
    kinds: tuple[tuple[lockouts.Kind, str | None], ...] = (
        ("device", device_id),
        ("subject", subject_id),
    )
    for kind, key in kinds:
        state = (
            lockouts.lock_state(session, lockouts.LIVENESS, kind=kind, key=key, now=now)
            if key
            else None
        )
        if state is not None and state.locked_until is not None:
            wait = max(1, math.ceil((state.locked_until - now).total_seconds()))
            raise LivenessLocked(
                f"{state.consecutive} failed liveness sessions in a row for this {kind}; "
                f"retry in {wait} s",
                retry_after_s=wait,
            )


def _count_outcome(session: Session, view: SessionView, result: str, now: datetime) -> None:
    """A failed session counts against its device and subject; a live one clears the
    subject's count (a device's clears only with time: many people use one terminal)."""
    kinds: tuple[tuple[lockouts.Kind, str | None], ...] = (
        ("device", view.device_id),
        ("subject", view.subject_id),
    )
    if result in store.FAILED_STATUSES:
        for kind, key in kinds:
            if key is not None:
                lockouts.record_failure(session, lockouts.LIVENESS, kind=kind, key=key, now=now)
    elif result == "live" and view.subject_id is not None:
        lockouts.record_success(session, lockouts.LIVENESS, kind="subject", key=view.subject_id)


# ---------------------------------------------------------------------- frames


def submit_frames(
    platform: Platform,
    principal: Principal,
    device: DeviceIdentity | None,
    session_id: str,
    submission: FrameSubmission,
) -> LivenessAnswer:
    """Decide an open session from its frames; bad input fails it and raises precisely.

    An inconclusive first burst of a passive session steps up instead of finishing: the answer
    carries ``challenge`` (and ``challenge_span_ms``) and the session waits for its frames.
    """
    principal.require(Scope.ENROL, Scope.TERMINAL)
    view = _open_session(platform, principal, device, session_id)
    try:
        analysis = analyse(platform, view, submission)
    except (ImageError, LivenessError) as exc:
        _finish(platform, view, Analysis("inconclusive", {"rejected_input": 1}, str(exc)))
        raise
    if _steps_up(view, analysis):
        return _step_up(platform, view, analysis)
    _finish(platform, view, analysis)
    return LivenessAnswer(session_id=view.id, result=analysis.result, evidence=_shown(analysis))


def _shown(analysis: Analysis) -> LivenessEvidence:
    challenges = [
        ChallengeResult(challenge=o.challenge, passed=o.passed, frame=o.frame, amount=o.amount)
        for o in analysis.outcomes
    ]
    return LivenessEvidence.model_validate(
        analysis.evidence | {"reason": analysis.reason, "challenges": challenges}
    )


def _steps_up(view: SessionView, analysis: Analysis) -> bool:
    return (
        view.mode == "passive"
        and not view.stepping_up
        and analysis.decided
        and analysis.result == "inconclusive"
    )


def _step_up(platform: Platform, view: SessionView, analysis: Analysis) -> LivenessAnswer:
    """Keep the session open for one challenge, chosen here; remember the burst's face."""
    challenge = step_up_challenge()
    sealed = _sealed_best(platform, view, analysis)
    with platform.database.session() as session:
        started = store.start_step_up(
            session,
            session_id=view.id,
            challenges=[challenge],
            evidence=analysis.evidence,
            sealed_best_template=sealed,
        )
    if not started:
        raise LivenessSessionClosed(f"liveness session {view.id} was decided by another request")
    return LivenessAnswer(
        session_id=view.id,
        result="inconclusive",
        evidence=_shown(analysis),
        challenge=challenge,
        challenge_span_ms=STEP_UP_SPAN_MS,
    )


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
    now = datetime.now(UTC)
    with platform.database.session() as session:
        done = store.finish_session(
            session,
            session_id=view.id,
            status=analysis.result,
            evidence=analysis.evidence,
            finished_at=now,
            sealed_best_template=sealed,
        )
        if done:
            _count_outcome(session, view, analysis.result, now)
    if not done:
        raise LivenessSessionClosed(f"liveness session {view.id} was decided by another request")


def _sealed_best(platform: Platform, view: SessionView, analysis: Analysis) -> bytes:
    """The chosen faces' templates, one row each, transformed and sealed together."""
    if not analysis.chosen:  # pragma: no cover - a decided analysis always has a best face
        raise ValueError("a live session needs a best face")
    network = network_of(platform, view.network_id)
    reader = platform.readers.get(network.engine)
    transform = platform.vault.transform(network, reader.info)
    vectors = np.stack([protected(transform, face) for face in analysis.chosen])
    return seal_session_vector(
        platform.vault.liveness_key(network),
        vectors,
        session_id=view.id,
        engine_key=reader.engine_key,
    )


# ---------------------------------------------------------------------- analysis


def analyse(platform: Platform, view: SessionView, submission: FrameSubmission) -> Analysis:
    """The session's result from its frames (no storage). Raises on bad input."""
    timestamps = parse_timestamps(submission.timestamps_ms)
    check_timing(len(submission.frames), timestamps)
    if view.stepping_up:
        check_step_up_span(timestamps)
    images = decode_frames(platform, submission.frames)
    thermal = _thermal(platform, submission.thermal)
    reader = platform.readers.get(network_of(platform, view.network_id).engine)
    faces = [_main_face(reader, image) for image in images]
    missing = [n for n, face in enumerate(faces, start=1) if face is None]
    base = {"frames": float(len(images)), "span_ms": float(timestamps[-1] - timestamps[0])}
    if missing:
        return Analysis(
            "inconclusive",
            base | {"frames_without_face": float(len(missing))},
            f"no face in frame {missing[0]}",
        )
    found = [face for face in faces if face is not None]
    base |= same_face(platform, reader, found) | _best_face_evidence(platform, found)
    if view.stepping_up:
        base |= _same_as_first_burst(platform, reader, view, found)
    analysis = _liveness(platform, view, images, thermal)
    analysis.evidence = base | analysis.evidence
    analysis.chosen = _chosen_faces(platform, found, KEPT_TEMPLATES[view.mode])
    return analysis


def check_step_up_span(timestamps_ms: Sequence[int]) -> None:
    """A step-up challenge is answered within :data:`STEP_UP_SPAN_MS`."""
    span = timestamps_ms[-1] - timestamps_ms[0]
    if span > STEP_UP_SPAN_MS:
        raise InvalidFrames(f"the challenge frames span {span} ms; at most {STEP_UP_SPAN_MS} ms")


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


def _main_face(reader: FaceReader, image: ImageArray) -> Face | None:
    found = reader.faces_in(image)
    return main_face(found, image.shape) if found else None


def same_face(platform: Platform, reader: FaceReader, faces: Sequence[Face]) -> dict[str, float]:
    """The lowest similarity of a frame's face to the first; :class:`FaceChanged` when one
    does not match it at :data:`SAME_FACE_FMR`."""
    first = faces[0].template
    lowest = 1.0
    calibration = platform.calibration(reader.info)
    for number, face in enumerate(faces[1:], start=2):
        score = first.similarity(face.template)
        lowest = min(lowest, score)
        if calibration is not None and not meets(calibration.unmasked, score, SAME_FACE_FMR):
            raise FaceChanged(f"frame {number} does not show the face of frame 1")
    return {"same_face_min": round(lowest, 4)}


def _best_face(platform: Platform, faces: Sequence[Face]) -> Face:
    """The highest-quality face, preferring faces that pass the quality gate."""
    return max(
        faces, key=lambda f: (not platform.quality_policy.problems(f.quality), f.quality.score)
    )


def _chosen_faces(platform: Platform, faces: Sequence[Face], k: int) -> tuple[Face, ...]:
    """The best face, then up to ``k - 1`` more that pass the quality gate and differ from
    those chosen (:func:`~facekey.templates.choose_diverse`)."""
    best = _best_face(platform, faces)
    good = [f for f in faces if f is not best and not platform.quality_policy.problems(f.quality)]
    pool = [best, *good]
    vectors = np.stack([f.template.vector for f in pool])
    # The best face scores highest so that choose_diverse starts from it.
    qualities = [2.0] + [f.quality.score for f in good]
    return tuple(pool[i] for i in choose_diverse(qualities, vectors, k))


def _best_face_evidence(platform: Platform, faces: Sequence[Face]) -> dict[str, float]:
    best = _best_face(platform, faces)
    return {
        "best_frame": float(faces.index(best) + 1),
        "best_quality": round(best.quality.score, 4),
        "best_quality_ok": float(not platform.quality_policy.problems(best.quality)),
    }


def _same_as_first_burst(
    platform: Platform, reader: FaceReader, view: SessionView, faces: Sequence[Face]
) -> dict[str, float]:
    """The challenge frames show the face of the session's first burst (:class:`FaceChanged`
    otherwise)."""
    if view.step_up_template is None:  # pragma: no cover - a step-up always keeps it
        raise FaceChanged("the session's first burst kept no face")
    network = network_of(platform, view.network_id)
    first = open_session_vector(
        platform.vault.liveness_key(network),
        view.step_up_template,
        session_id=view.id,
        engine_key=reader.engine_key,
    )[: reader.info.dimension]  # the first burst's best face
    transform = platform.vault.transform(network, reader.info)
    lowest = min(cosine(first, protected(transform, face)) for face in faces)
    calibration = platform.calibration(reader.info)
    if calibration is not None and not meets(calibration.unmasked, lowest, SAME_FACE_FMR):
        raise FaceChanged("the challenge frames do not show the face of the first burst")
    return {"same_face_first_burst": round(lowest, 4)}


def _liveness(
    platform: Platform,
    view: SessionView,
    images: Sequence[ImageArray],
    thermal: FloatArray | None,
) -> Analysis:
    """The liveness rules (:mod:`facekey.liveness`) on decoded frames: a passive burst, or
    challenges (a challenge session's, or a passive session's step-up)."""
    if not view.challenges:
        decision = platform.liveness.use(lambda checker: checker.check(images, thermal))
        reason = None if decision.result == "live" else reason_of(decision)
        decided = "frames" in decision.evidence
        return Analysis(decision.result, numeric_evidence(decision), reason, decided=decided)
    return _challenge(platform, view.challenges, images, thermal)


def _challenge(
    platform: Platform,
    challenges: Sequence[Challenge],
    images: Sequence[ImageArray],
    thermal: FloatArray | None,
) -> Analysis:
    observed = platform.liveness.use(lambda checker: checker.observe_burst(images, track=False))
    if any(o is None for o in observed):
        lost = next(n for n, o in enumerate(observed, start=1) if o is None)
        return Analysis("inconclusive", {}, f"the face mesh lost the face in frame {lost}")
    fused = platform.liveness.use(
        lambda checker: checker.decide(images, observed, thermal, thorough=True)
    )
    decision = decide_challenges(challenges, [o for o in observed if o is not None], fused)
    numbers = numeric_evidence(fused) | pose_evidence(decision)
    return Analysis(decision.result, numbers, decision.reason, decision.outcomes, decided=True)


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
    reader = platform.readers.get(network.engine)
    vectors = open_session_vector(
        platform.vault.liveness_key(network),
        sealed,
        session_id=session_id,
        engine_key=reader.engine_key,
    ).reshape(-1, reader.info.dimension)
    quality = float(evidence.get("best_quality", 0.0))
    return BoundFace(session_id, vectors, quality, bool(evidence.get("best_quality_ok", 0.0)))


def _check_usable(row: LivenessSession, now: datetime, mode: Mode | None) -> None:
    if row.used_at is not None:
        raise LivenessSessionUsed(f"liveness session {row.id} was already used")
    if row.status == "expired" or row.expires_at <= now:
        raise LivenessSessionExpired(f"liveness session {row.id} has expired")
    if row.status == "open":
        waiting = "waits for its challenge's frames" if row.challenges != "[]" else "has no frames"
        raise LivenessNotPassed(f"liveness session {row.id} {waiting} yet")
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
