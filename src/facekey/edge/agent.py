"""The checkout terminal agent: one sale, from the camera's frames to the server's answer.

1. A burst of frames is taken from the camera (in memory only).
2. On the device: detection, quality and passive liveness of the burst
   (:class:`~facekey.liveness.session.LivenessChecker`, the server's own rules). No face, or a
   clear attack: the sale is declined on the spot and nothing leaves the device.
3. To the server, as the checkout contract defines: in ``session`` mode (the default) the
   burst's frames go to a passive liveness session, which the server decides itself (and
   answers a challenge the customer performs when it is unsure), and the checkout names that
   session; in ``template`` mode a clearly live burst's best template (made on the device by
   the network's engine) is sent instead of any frame.
4. A step-up asks the customer for the phone's last four digits and sends them with the
   on-device template.

Whatever happens, the frames, crops and templates are dropped when the answer is returned,
and the on-device models' buffers are overwritten (:meth:`CheckoutAgent.scrub`). A server that
cannot be reached declines the sale with a clear message; nothing is queued.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from PIL import Image

from facekey.client import ApiError
from facekey.config import Settings
from facekey.edge.frames import Frame, take
from facekey.edge.transport import DeviceClient, Files
from facekey.errors import ServerUnreachable
from facekey.liveness.session import LivenessChecker
from facekey.pipeline import Face, FacePipeline, main_face
from facekey.vision.mesh import Roi
from facekey.vision.quality import QualityPolicy

log = logging.getLogger(__name__)

Mode = Literal["session", "template"]
#: The challenge frames span at most this long (the server allows 3 s).
CHALLENGE_SPAN_MS: Final = 2_900
MAX_CHALLENGE_FRAMES: Final = 12
#: Frames the template is taken from (the sharpest face of these).
TEMPLATE_CANDIDATES: Final = 3
_BLANK: Final = np.zeros((192, 192, 3), dtype=np.uint8)

MESSAGES: Final = {
    "approved": "Paid. Thank you!",
    "no_face": "No face seen: look at the camera and try again, or pay another way.",
    "low_quality": "The picture is not good enough: face the camera in good light.",
    "liveness": "The face could not be verified as live: please pay another way.",
    "server_unreachable": (
        "Cannot reach the payment server: nothing was charged. Please pay another way."
    ),
    "step_up_cancelled": "Payment cancelled: nothing was charged.",
    "declined": "Payment declined: please pay another way.",
}


@dataclass(frozen=True)
class Sale:
    """What the till asks for: an amount in minor units, a currency, an idempotency key."""

    amount_minor: int
    currency: str
    idempotency_key: str = ""

    def fields(self, merchant_id: str, store_id: str) -> dict[str, str]:
        """The checkout's form fields (a new idempotency key when none was given)."""
        return {
            "amount": str(self.amount_minor),
            "currency": self.currency,
            "merchant_id": merchant_id,
            "store_id": store_id,
            "idempotency_key": self.idempotency_key or str(uuid.uuid4()),
        }


@dataclass(frozen=True)
class Outcome:
    """What the terminal shows: approved or declined, why, and the ledger entry if any."""

    decision: Literal["approved", "declined"]
    reason: str
    message: str
    authorization_id: str | None = None
    sent_to_server: bool = True


@dataclass(frozen=True)
class AgentSettings:
    """How the agent works: the store it sells for, burst size, probe mode."""

    merchant_id: str
    store_id: str
    burst_frames: int = 8
    mode: Mode = "session"


@dataclass(frozen=True, eq=False)
class _Look:
    """The device's own reading of a burst: liveness, frames with a face, the best face."""

    result: str
    faces: int
    best: Face | None = None


def _declined(reason: str, *, sent: bool = True, detail: str | None = None) -> Outcome:
    message = MESSAGES.get(reason, MESSAGES["declined"])
    return Outcome(
        "declined", reason, message if detail is None else f"{message} ({detail})", None, sent
    )


class CheckoutAgent:
    """Runs checkouts for one terminal; models are loaded once and reused."""

    def __init__(
        self,
        client: DeviceClient,
        settings: AgentSettings,
        checker: LivenessChecker,
        pipeline: FacePipeline,
        *,
        policy: QualityPolicy | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._checker = checker
        self._pipeline = pipeline
        self._policy = policy or QualityPolicy()

    def checkout(
        self,
        sale: Sale,
        stream: Iterator[Frame],
        *,
        ask_digits: Callable[[], str | None] = lambda: None,
        prompt: Callable[[str], None] = lambda challenge: None,
    ) -> Outcome:
        """One sale: frames from ``stream`` (the camera), the answer the terminal shows."""
        burst = take(stream, self._settings.burst_frames)
        try:
            return self._checkout(sale, burst, stream, ask_digits, prompt)
        finally:
            burst.clear()
            self.scrub()

    def scrub(self) -> None:
        """Overwrite the last input of the on-device models (they keep their buffers)."""
        self._checker.detector.detect(_BLANK)
        self._checker.mesh.landmarks_in(_BLANK, Roi(96.0, 96.0, 192.0))

    def _checkout(
        self,
        sale: Sale,
        burst: list[Frame],
        stream: Iterator[Frame],
        ask_digits: Callable[[], str | None],
        prompt: Callable[[str], None],
    ) -> Outcome:
        look = self._look(burst)
        refused = self._refused_here(look)
        if refused is not None or look.best is None:
            return refused or _declined("no_face", sent=False)
        fields = sale.fields(self._settings.merchant_id, self._settings.store_id)
        try:
            probe = self._probe(look, burst, stream, prompt)
            if probe is None:
                return _declined("liveness")
            answer = self._client.post_form("/v1/checkout", fields | probe)
            if answer.get("decision") == "step_up":
                answer = self._step_up(answer, look.best, ask_digits)
        except ServerUnreachable:
            return _declined("server_unreachable")
        except ApiError as exc:
            log.warning("checkout refused: %s", exc)
            return _declined(_slug(exc.problem), detail=str(exc.problem.get("detail", "")))
        return _outcome(answer)

    def _refused_here(self, look: _Look) -> Outcome | None:
        """The device's own refusal (nothing is sent): no face, an attack, a poor picture."""
        if look.faces < 3 or look.best is None:
            return _declined("no_face", sent=False)
        if look.result == "spoof":
            return _declined("liveness", sent=False)
        problems = self._policy.problems(look.best.quality)
        if problems:
            return _declined("low_quality", sent=False, detail=", ".join(problems))
        return None

    def _look(self, burst: list[Frame]) -> _Look:
        images = [f.image for f in burst]
        observed = self._checker.observe_burst(images)
        faces = sum(o is not None for o in observed)
        if faces < 3:
            return _Look("no_face", faces)
        decision = self._checker.decide(images, observed)
        return _Look(decision.result, faces, self._best_face(burst))

    def _probe(
        self,
        look: _Look,
        burst: list[Frame],
        stream: Iterator[Frame],
        prompt: Callable[[str], None],
    ) -> dict[str, str] | None:
        """The checkout's probe field, or None when liveness was not established."""
        if self._settings.mode == "template" and look.result == "live" and look.best:
            return {"template": _encoded(look.best)}
        session_id = self._live_session(burst, stream, prompt)
        return None if session_id is None else {"liveness_session_id": session_id}

    def _live_session(
        self, burst: list[Frame], stream: Iterator[Frame], prompt: Callable[[str], None]
    ) -> str | None:
        """A passive session the server found live (after its challenge if it asked one)."""
        created = self._client.post_json("/v1/liveness/sessions", {"mode": "passive"})
        session_id = str(created["session_id"])
        answer = self._submit(session_id, burst)
        challenge = answer.get("challenge")
        if answer.get("result") == "inconclusive" and challenge:
            prompt(str(challenge))
            frames = _challenge_frames(stream)
            try:
                answer = self._submit(session_id, frames)
            finally:
                frames.clear()
        log.info("liveness session %s: %s", session_id, answer.get("result"))
        return session_id if answer.get("result") == "live" else None

    def _submit(self, session_id: str, frames: list[Frame]) -> dict[str, Any]:
        start = frames[0].timestamp_ms if frames else 0
        timestamps = [f.timestamp_ms - start for f in frames]
        files: Files = [
            ("frames", (f"frame-{i:02d}.jpg", _jpeg(f), "image/jpeg")) for i, f in enumerate(frames)
        ]
        path = f"/v1/liveness/sessions/{session_id}/frames"
        return self._client.post_form(path, {"timestamps": json.dumps(timestamps)}, files)

    def _best_face(self, burst: list[Frame]) -> Face | None:
        """The best face (quality) of a few frames spread over the burst."""
        step = max(1, len(burst) // TEMPLATE_CANDIDATES)
        faces: list[Face] = []
        for frame in burst[::step][:TEMPLATE_CANDIDATES]:
            found = self._pipeline.faces(frame.image)
            if found:
                faces.append(main_face(found, frame.image.shape))
        return max(faces, key=lambda f: f.quality.score) if faces else None

    def _step_up(
        self, answer: dict[str, Any], face: Face, ask_digits: Callable[[], str | None]
    ) -> dict[str, Any]:
        digits = ask_digits()
        if not digits:
            return {"decision": "declined", "reason": "step_up_cancelled"}
        path = f"/v1/checkout/{answer['authorization_id']}/step-up"
        fields = {"phone_digits": digits, "template": _encoded(face)}
        return self._client.post_form(path, fields)


def _encoded(face: Face) -> str:
    return base64.b64encode(face.template.to_bytes()).decode("ascii")


def _challenge_frames(stream: Iterator[Frame]) -> list[Frame]:
    """The frames of the challenge: up to :data:`CHALLENGE_SPAN_MS` after the first."""
    frames: list[Frame] = []
    for frame in stream:
        if frames and frame.timestamp_ms - frames[0].timestamp_ms > CHALLENGE_SPAN_MS:
            break
        frames.append(frame)
        if len(frames) >= MAX_CHALLENGE_FRAMES:
            break
    return frames


def _jpeg(frame: Frame) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame.image).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def _slug(problem: dict[str, Any]) -> str:
    return str(problem.get("type", "declined")).rsplit("/", 1)[-1]


def _outcome(answer: dict[str, Any]) -> Outcome:
    if answer.get("decision") == "approved":
        return Outcome("approved", "approved", MESSAGES["approved"], answer.get("authorization_id"))
    reason = str(answer.get("reason") or "declined")
    message = MESSAGES.get(reason, MESSAGES["declined"])
    return Outcome("declined", reason, message, answer.get("authorization_id"))


def build_agent(
    client: DeviceClient,
    settings: AgentSettings,
    *,
    engine: str = "face-reid-0095",
    options: Settings | None = None,
) -> CheckoutAgent:
    """An agent with the on-device models: one detector shared by liveness and templates,
    the passive pair, Face Mesh, and the network's engine."""
    from facekey.engines.registry import load_engine
    from facekey.liveness.session import DEFAULT_DETECTORS
    from facekey.vision.detectors import make_detector

    options = options or Settings()
    detector = make_detector(DEFAULT_DETECTORS)
    pipeline = FacePipeline(
        engine=load_engine(engine, options), detector=detector, limits=options.images
    )
    return CheckoutAgent(client, settings, LivenessChecker(detector=detector), pipeline)
