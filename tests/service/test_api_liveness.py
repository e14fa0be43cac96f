"""Liveness sessions over the API, bound to enrolment and checkout; SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from api_helpers import (
    CONSENT,
    Network,
    Terminal,
    enrol,
    identify,
    image_file,
    new_terminal,
)
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import update

from facekey.evaluation.liveness_sessions import moved_still, tilted_still
from facekey.flows import liveness as liveness_flow
from facekey.flows.platform import Platform
from facekey.imaging import read_image_file
from facekey.liveness.photometric import PLANAR_AGREEMENT
from facekey.store.tables import FailureCounter, LivenessSession

LIVENESS = Path(__file__).parents[1] / "fixtures" / "liveness"
#: A real sequence: the subject turns to her right (towards the camera), then looks up.
TURN_THEN_LOOK_UP = sorted(LIVENESS.glob("turn-then-look-up-*.jpg"))
#: A real sequence with small head movements (no challenge in it).
SMALL_MOVES = sorted(LIVENESS.glob("head-turn-*.jpg"))
SESSIONS = "/v1/liveness/sessions"


def _jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def _files(frames: list[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("frames", (f"frame-{i:02d}.jpg", data, "image/jpeg")) for i, data in enumerate(frames)]


def _times(count: int, step_ms: int = 200) -> str:
    return json.dumps([1000 + step_ms * i for i in range(count)])


def _read(paths: list[Path]) -> list[bytes]:
    return [p.read_bytes() for p in paths]


@pytest.fixture
def challenges(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Sessions ask for the two challenges the real fixture sequence performs."""
    chosen = ["turn_right", "look_up"]
    monkeypatch.setattr(liveness_flow, "random_challenges", lambda: tuple(chosen))
    return chosen


def _create(client: TestClient, network: Network, mode: str = "challenge", **extra: Any) -> Any:
    return client.post(SESSIONS, headers=network.auth("enrol"), json={"mode": mode, **extra})


def _submit(
    client: TestClient,
    network: Network,
    session_id: str,
    frames: list[bytes],
    timestamps: str | None = None,
    thermal: bytes | None = None,
) -> Any:
    files = _files(frames)
    if thermal is not None:
        files.append(("thermal", ("thermal.npy", thermal, "application/octet-stream")))
    return client.post(
        f"{SESSIONS}/{session_id}/frames",
        headers=network.auth("enrol"),
        data={"timestamps": timestamps if timestamps is not None else _times(len(frames))},
        files=files,
    )


def _live_session(client: TestClient, network: Network) -> str:
    session_id = _create(client, network).json()["session_id"]
    body = _submit(client, network, session_id, _read(TURN_THEN_LOOK_UP)).json()
    assert body["result"] == "live", body
    return str(session_id)


def _enrol_session(client: TestClient, network: Network, session_id: str) -> Any:
    return client.post(
        "/v1/subjects",
        headers=network.auth("enrol"),
        data={"consent": CONSENT, "liveness_session_id": session_id},
    )


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug), body
    return body


# ---------------------------------------------------------------------- sessions


def test_create_sessions(client: TestClient, network: Network) -> None:
    body = _create(client, network).json()
    assert set(body) == {"session_id", "mode", "nonce", "expires_at", "challenges"}
    assert 2 <= len(body["challenges"]) <= 3 and len(set(body["challenges"])) == len(
        body["challenges"]
    )
    expires = datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)
    assert timedelta(seconds=100) < expires <= timedelta(minutes=2)
    passive = _create(client, network, "passive").json()
    assert passive["challenges"] == [] and passive["nonce"] != body["nonce"]
    _problem(_create(client, network, "smile"), 422, "invalid-request")
    denied = client.post(SESSIONS, headers=network.auth("privacy"), json={"mode": "passive"})
    _problem(denied, 403, "permission-denied")


def test_real_challenges_are_live_and_enrol_once(
    client: TestClient, network: Network, challenges: list[str]
) -> None:
    created = _create(client, network).json()
    assert created["challenges"] == challenges
    body = _submit(client, network, created["session_id"], _read(TURN_THEN_LOOK_UP)).json()
    assert body["result"] == "live", body
    evidence = body["evidence"]
    assert [c["passed"] for c in evidence["challenges"]] == [True, True]
    assert evidence["frames"] == 6 and evidence["same_face_min"] > 0.5
    assert evidence["photometric_agreement"] < PLANAR_AGREEMENT
    enrolled = _enrol_session(client, network, created["session_id"])
    assert enrolled.status_code == 201, enrolled.text
    # The session's frames give several templates: the best, and others chosen for diversity.
    assert 2 <= enrolled.json()["templates"] <= 5
    match = identify(client, network, LIVENESS / "turn-then-look-up-0040.jpg").json()
    assert match["match"] == enrolled.json()["subject_id"]
    _problem(_enrol_session(client, network, created["session_id"]), 409, "liveness-session-used")


def test_frames_cannot_be_sent_twice(
    client: TestClient, network: Network, challenges: list[str]
) -> None:
    session_id = _live_session(client, network)
    again = _submit(client, network, session_id, _read(TURN_THEN_LOOK_UP))
    _problem(again, 409, "liveness-session-closed")


def test_challenges_not_performed_are_inconclusive(
    client: TestClient, network: Network, challenges: list[str]
) -> None:
    session_id = _create(client, network).json()["session_id"]
    body = _submit(client, network, session_id, _read(SMALL_MOVES)).json()
    assert body["result"] == "inconclusive", body
    assert "turn_right" in body["evidence"]["reason"]
    _problem(_enrol_session(client, network, session_id), 422, "liveness-not-passed")


@pytest.mark.parametrize(
    "still", ["nuaa-live-0001_00_00_01_0.jpg", "pad-image_T1.jpg", "../lfw/Aaron_Sorkin_0001.jpg"]
)
@pytest.mark.parametrize("mode", ["challenge", "passive"])
def test_a_still_moved_scaled_rotated_is_never_live(
    client: TestClient, network: Network, still: str, mode: str
) -> None:
    image = read_image_file(LIVENESS / still)
    frames = [_jpeg(f) for f in moved_still(image, 8, np.random.default_rng(5))]
    for challenges in (["turn_left", "blink"], ["turn_right", "look_up"]):
        created = liveness_flow_session(client, network, mode, challenges)
        body = _submit(client, network, created, frames).json()
        assert body["result"] != "live", body
        _problem(_enrol_session(client, network, created), 422, "liveness-not-passed")
        if mode == "passive":
            break


@pytest.mark.parametrize(
    ("still", "axis", "challenges"),
    [
        ("../lfw/Aaron_Sorkin_0001.jpg", "vertical", ["turn_left", "look_up"]),
        ("../lfw/Aaron_Sorkin_0001.jpg", "vertical", ["turn_right", "blink"]),
        ("nuaa-attack-0001_00_00_01_0.jpg", "horizontal", ["look_up", "turn_left"]),
        ("pad-image_T1.jpg", "horizontal", ["look_up", "turn_right"]),
    ],
)
def test_a_tilted_still_is_a_spoof(
    client: TestClient, network: Network, still: str, axis: str, challenges: list[str]
) -> None:
    """A photo tilted 0→60° in perspective makes the mesh turn or nod by ≥ 12°: spoof."""
    image = read_image_file(LIVENESS / still)
    views = tilted_still(image, 8, np.random.default_rng(5), axis, 60.0)
    created = liveness_flow_session(client, network, "challenge", challenges)
    body = _submit(client, network, created, [_jpeg(f) for f in views]).json()
    assert body["result"] == "spoof", body
    if "photometric_agreement" in body["evidence"]:
        assert body["evidence"]["photometric_agreement"] >= PLANAR_AGREEMENT
        assert "plane" in body["evidence"]["reason"]
    else:  # a printed photo: the passive pair already says spoof, so the measure is skipped
        assert "passive evidence: spoof" in body["evidence"]["reason"]
    _problem(_enrol_session(client, network, created), 422, "liveness-not-passed")


@pytest.mark.parametrize("axis", ["vertical", "horizontal"])
def test_a_tilted_still_is_never_live(client: TestClient, network: Network, axis: str) -> None:
    """Tilted 0→30° (a pose change the measure may not reach): never live either."""
    for still in ("nuaa-live-0001_00_00_01_0.jpg", "../lfw/Aaron_Sorkin_0001.jpg"):
        image = read_image_file(LIVENESS / still)
        views = tilted_still(image, 8, np.random.default_rng(7), axis)
        created = liveness_flow_session(client, network, "challenge", ["turn_left", "look_up"])
        body = _submit(client, network, created, [_jpeg(f) for f in views]).json()
        assert body["result"] != "live", body


def liveness_flow_session(
    client: TestClient, network: Network, mode: str, challenges: list[str]
) -> str:
    """A session with explicit challenges, opened through the API with the random choice
    pinned."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(liveness_flow, "random_challenges", lambda: tuple(challenges))
        return str(_create(client, network, mode).json()["session_id"])


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("timestamps", "reason"),
    [
        (json.dumps([0, 200, 100, 300, 400, 500]), "increase"),
        (json.dumps([0, 200, 200, 300, 400, 500]), "increase"),
        (json.dumps([0, 100, 200]), "one timestamp per frame"),
        (json.dumps([0, 2000, 4000, 6000, 8000, 10_001]), "span"),
        ("[0, 1.5, 2, 3, 4, 5]", "integer"),
        ("not json", "JSON"),
    ],
)
def test_bad_timestamps_fail_the_session(
    client: TestClient, network: Network, challenges: list[str], timestamps: str, reason: str
) -> None:
    session_id = _create(client, network).json()["session_id"]
    response = _submit(client, network, session_id, _read(TURN_THEN_LOOK_UP), timestamps)
    assert reason in _problem(response, 422, "invalid-frames")["detail"]
    _problem(
        _submit(client, network, session_id, _read(TURN_THEN_LOOK_UP)),
        409,
        "liveness-session-closed",
    )
    _problem(_enrol_session(client, network, session_id), 422, "liveness-not-passed")


@pytest.mark.parametrize("count", [0, 2, 21])
def test_too_few_or_too_many_frames(client: TestClient, network: Network, count: int) -> None:
    session_id = _create(client, network).json()["session_id"]
    frames = (_read(TURN_THEN_LOOK_UP) * 4)[:count]
    response = _submit(client, network, session_id, frames)
    if count == 0:
        assert response.status_code == 422
    else:
        assert "between 3 and 20" in _problem(response, 422, "invalid-frames")["detail"]
    _problem(_enrol_session(client, network, session_id), 422, "liveness-not-passed")


@pytest.mark.parametrize(
    ("bad", "status", "slug"),
    [(b"", 422, "empty-image"), (b"%PDF-1.4 not a frame", 415, "unsupported-image")],
)
def test_empty_or_corrupt_frame(
    client: TestClient, network: Network, bad: bytes, status: int, slug: str
) -> None:
    session_id = _create(client, network).json()["session_id"]
    frames = _read(TURN_THEN_LOOK_UP)
    frames[3] = bad
    body = _problem(_submit(client, network, session_id, frames), status, slug)
    assert body["detail"].startswith("frame 4:")
    _problem(_enrol_session(client, network, session_id), 422, "liveness-not-passed")


def test_truncated_frame(client: TestClient, network: Network) -> None:
    session_id = _create(client, network).json()["session_id"]
    frames = _read(TURN_THEN_LOOK_UP)
    frames[1] = frames[1][: len(frames[1]) // 3]
    response = _submit(client, network, session_id, frames)
    assert response.status_code in (415, 422) and "frame 2" in response.json()["detail"]


def test_a_different_face_mid_way(
    client: TestClient, network: Network, lfw: Path, challenges: list[str]
) -> None:
    session_id = _create(client, network).json()["session_id"]
    frames = _read(TURN_THEN_LOOK_UP)
    frames[3] = (lfw / "Cheryl_Hines_0001.jpg").read_bytes()
    body = _problem(_submit(client, network, session_id, frames), 422, "face-changed")
    assert "frame 4" in body["detail"]
    _problem(_enrol_session(client, network, session_id), 422, "liveness-not-passed")


def test_an_expired_session(
    client: TestClient, platform: Platform, network: Network, challenges: list[str]
) -> None:
    waiting = _create(client, network).json()["session_id"]
    live = _live_session(client, network)
    past = datetime.now(UTC) - timedelta(seconds=1)
    with platform.database.session() as session:
        session.execute(
            update(LivenessSession)
            .where(LivenessSession.id.in_([waiting, live]))
            .values(expires_at=past)
        )
    frames = _read(TURN_THEN_LOOK_UP)
    _problem(_submit(client, network, waiting, frames), 410, "liveness-session-expired")
    _problem(_enrol_session(client, network, live), 410, "liveness-session-expired")
    _create(client, network)  # sweeps expired sessions: their templates are dropped
    with platform.database.session() as session:
        row = session.get(LivenessSession, live)
        assert row is not None and row.status == "expired" and row.sealed_best_template is None


def test_another_network_cannot_use_a_session(
    client: TestClient, network: Network, other_network: Network, challenges: list[str]
) -> None:
    live = _live_session(client, network)
    _problem(_enrol_session(client, other_network, live), 404, "liveness-session-not-found")
    frames = _read(TURN_THEN_LOOK_UP)
    fresh = _create(client, network).json()["session_id"]
    _problem(_submit(client, other_network, fresh, frames), 404, "liveness-session-not-found")
    assert _enrol_session(client, network, live).status_code == 201


def test_enrolment_takes_images_or_a_session(
    client: TestClient, network: Network, lfw: Path, challenges: list[str]
) -> None:
    live = _live_session(client, network)
    both = client.post(
        "/v1/subjects",
        headers=network.auth("enrol"),
        data={"consent": CONSENT, "liveness_session_id": live},
        files=[("images", ("a.jpg", (lfw / "Aaron_Sorkin_0001.jpg").read_bytes(), "image/jpeg"))],
    )
    assert "not both" in _problem(both, 422, "invalid-request")["detail"]
    neither = client.post("/v1/subjects", headers=network.auth("enrol"), data={"consent": CONSENT})
    _problem(neither, 422, "invalid-request")
    passive = _create(client, network, "passive").json()["session_id"]
    assert _submit(client, network, passive, _read(SMALL_MOVES)).json()["result"] == "live"
    _problem(_enrol_session(client, network, passive), 422, "liveness-not-passed")


def test_require_liveness_refuses_bare_images(
    client: TestClient, platform: Platform, network: Network, lfw: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(platform.settings, "require_liveness", True)
    _problem(enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg"), 422, "liveness-required")


# ---------------------------------------------------------------------- terminals


class SessionTerminal(Terminal):
    """A terminal that opens passive sessions, submits frames and pays with a session."""

    def create(self, client: TestClient, **fields: Any) -> Any:
        body = json.dumps({"mode": "passive", **fields}).encode()
        return self.send(client, SESSIONS, body, "application/json")

    def submit(self, client: TestClient, session_id: str, frames: list[bytes]) -> Any:
        path = f"{SESSIONS}/{session_id}/frames"
        return self.post(client, path, {"timestamps": _times(len(frames))}, _files(frames))

    def checkout(self, client: TestClient, key: str, **probe: str) -> Any:
        return self.post(client, "/v1/checkout", self.sale(key) | probe)


def _terminal(platform: Platform, network: Network, name: str = "till") -> SessionTerminal:
    return SessionTerminal(**vars(new_terminal(platform, network, device=name)))


def test_checkout_bound_to_a_passive_session_pays_once(
    client: TestClient, platform: Platform, network: Network
) -> None:
    subject_id = enrol(client, network, LIVENESS / "head-turn-0100.jpg").json()["subject_id"]
    till, other = _terminal(platform, network), _terminal(platform, network, "till 2")
    session_id = till.create(client).json()["session_id"]
    decided = till.submit(client, session_id, _read(TURN_THEN_LOOK_UP)).json()
    assert decided["result"] == "live", decided
    _problem(
        other.checkout(client, "o-1", liveness_session_id=session_id),
        404,
        "liveness-session-not-found",
    )
    _problem(_enrol_session(client, network, session_id), 404, "liveness-session-not-found")
    paid = till.checkout(client, "k-1", liveness_session_id=session_id).json()
    assert paid["decision"] == "approved", paid
    retried = till.checkout(client, "k-1", liveness_session_id=session_id).json()
    assert retried["replayed"] and retried["authorization_id"] == paid["authorization_id"]
    again = till.checkout(client, "k-2", liveness_session_id=session_id)
    _problem(again, 409, "liveness-session-used")
    assert subject_id


def test_checkout_refuses_a_failed_session_and_bare_images_when_required(
    client: TestClient, platform: Platform, network: Network, monkeypatch: Any
) -> None:
    till = _terminal(platform, network)
    session_id = till.create(client).json()["session_id"]
    _problem(till.submit(client, session_id, _read(TURN_THEN_LOOK_UP)[:2]), 422, "invalid-frames")
    refused = till.checkout(client, "k-1", liveness_session_id=session_id)
    _problem(refused, 422, "liveness-not-passed")
    both = till.checkout(client, "k-2", liveness_session_id=session_id, template="AAAA")
    _problem(both, 422, "invalid-request")
    monkeypatch.setattr(platform.settings, "require_liveness", True)
    _problem(till.checkout(client, "k-3", template="AAAA"), 422, "liveness-required")


def test_lockout_after_five_failed_sessions(
    client: TestClient, platform: Platform, network: Network
) -> None:
    till, other = _terminal(platform, network), _terminal(platform, network, "till 2")
    subject_id = enrol(client, network, LIVENESS / "head-turn-0100.jpg").json()["subject_id"]
    for _ in range(5):
        session_id = till.create(client, subject_id=subject_id).json()["session_id"]
        _problem(till.submit(client, session_id, _read(SMALL_MOVES)[:2]), 422, "invalid-frames")
    locked = _problem(till.create(client), 429, "liveness-locked")
    assert 0 < locked["retry_after"] <= 180
    assert other.create(client).status_code == 201  # another device is not locked
    by_subject = other.create(client, subject_id=subject_id)
    assert int(_problem(by_subject, 429, "liveness-locked")["retry_after"]) > 0
    assert by_subject.headers["Retry-After"].isdigit()
    # A terminal that keeps failing liveness is under attack: it cannot check out either.
    image = [image_file(LIVENESS / "head-turn-0100.jpg", "image")]
    paid = till.post(client, "/v1/checkout", till.sale("k-locked"), image).json()
    assert (paid["decision"], paid["reason"]) == ("declined", "locked_out"), paid
    # The lock runs out (three minutes for the first): the device may try again.
    with platform.database.session() as session:
        session.execute(
            update(FailureCounter)
            .where(FailureCounter.key == till.device_id)
            .values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert till.create(client).status_code == 201


# ---------------------------------------------------------------------- step-up challenge


@pytest.fixture
def unsure(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    """The passive burst is never clearly live (the live threshold out of reach), so every
    passive session that is not a spoof steps up."""
    checker = platform.liveness.use(lambda c: c)
    strict = dataclasses.replace(checker.threshold, session_live_at=1.0)
    monkeypatch.setattr(checker, "threshold", strict)


def _asked(monkeypatch: pytest.MonkeyPatch, challenge: str) -> None:
    monkeypatch.setattr(liveness_flow, "step_up_challenge", lambda: challenge)


def _stepped_up(till: SessionTerminal, client: TestClient, frames: list[bytes]) -> str:
    session_id = str(till.create(client).json()["session_id"])
    body = till.submit(client, session_id, frames).json()
    assert body["result"] == "inconclusive" and body["challenge"], body
    assert body["challenge_span_ms"] == 3000
    return session_id


def test_an_unsure_burst_asks_a_challenge_and_the_performed_challenge_pays(
    client: TestClient,
    platform: Platform,
    network: Network,
    unsure: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enrol(client, network, LIVENESS / "head-turn-0100.jpg")
    _asked(monkeypatch, "turn_right")
    till = _terminal(platform, network)
    session_id = _stepped_up(till, client, _read(SMALL_MOVES))
    _problem(
        till.checkout(client, "s-0", liveness_session_id=session_id), 422, "liveness-not-passed"
    )
    answered = till.submit(client, session_id, _read(TURN_THEN_LOOK_UP)).json()
    assert answered["result"] == "live", answered
    assert answered["evidence"]["challenges"][0]["challenge"] == "turn_right"
    assert answered["evidence"]["same_face_first_burst"] > 0.5
    assert "challenge" not in answered
    paid = till.checkout(client, "s-1", liveness_session_id=session_id).json()
    assert paid["decision"] == "approved", paid
    _problem(
        till.submit(client, session_id, _read(TURN_THEN_LOOK_UP)), 409, "liveness-session-closed"
    )


def test_the_server_picks_one_of_three_short_challenges(
    client: TestClient, platform: Platform, network: Network, unsure: None
) -> None:
    till = _terminal(platform, network)
    seen = set()
    for _ in range(12):
        session_id = str(till.create(client).json()["session_id"])
        seen.add(till.submit(client, session_id, _read(SMALL_MOVES)).json()["challenge"])
    assert seen <= {"turn_left", "turn_right", "look_up"} and len(seen) >= 2


def test_a_replay_of_another_movement_fails_the_challenge(
    client: TestClient,
    platform: Platform,
    network: Network,
    unsure: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The frames turn right and look up; the server asked for a left turn."""
    _asked(monkeypatch, "turn_left")
    till = _terminal(platform, network)
    session_id = _stepped_up(till, client, _read(SMALL_MOVES))
    answered = till.submit(client, session_id, _read(TURN_THEN_LOOK_UP)).json()
    assert answered["result"] == "inconclusive" and "turn_left" in answered["evidence"]["reason"]
    _problem(
        till.checkout(client, "r-1", liveness_session_id=session_id), 422, "liveness-not-passed"
    )


@pytest.mark.parametrize("challenge", ["turn_left", "turn_right", "look_up"])
def test_a_still_photo_cannot_pass_a_challenge(
    client: TestClient,
    platform: Platform,
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
    challenge: str,
) -> None:
    """A photo of a live face waved in front of the camera is not clearly live (its landmarks
    move as a plane): the session steps up, and no movement of the photo performs a head turn."""
    _asked(monkeypatch, challenge)
    image = read_image_file(LIVENESS / "nuaa-live-0001_00_00_01_0.jpg")
    frames = [_jpeg(f) for f in moved_still(image, 8, np.random.default_rng(3))]
    till = _terminal(platform, network)
    session_id = _stepped_up(till, client, frames)
    axis = "horizontal" if challenge == "look_up" else "vertical"
    for tilt in (1, -1):  # the photo tilted either way: towards the turn asked or away
        views = tilted_still(image, 8, np.random.default_rng(5), axis, 30.0 * tilt)
        session_id = session_id or _stepped_up(till, client, frames)
        answered = till.submit(client, session_id, [_jpeg(f) for f in views])
        assert answered.status_code == 200, answered.text
        assert answered.json()["result"] != "live", answered.text
        session_id = ""


def test_challenge_frames_must_be_quick_and_of_the_same_face(
    client: TestClient,
    platform: Platform,
    network: Network,
    lfw: Path,
    unsure: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _asked(monkeypatch, "turn_right")
    till = _terminal(platform, network)
    slow = _stepped_up(till, client, _read(SMALL_MOVES))
    frames = _read(TURN_THEN_LOOK_UP)
    path = f"{SESSIONS}/{slow}/frames"
    late = till.post(client, path, {"timestamps": _times(len(frames), 700)}, _files(frames))
    assert "3000 ms" in _problem(late, 422, "invalid-frames")["detail"]
    other = _stepped_up(till, client, _read(SMALL_MOVES))
    stranger = read_image_file(lfw / "Aaron_Sorkin_0001.jpg")
    moved = [_jpeg(f) for f in moved_still(stranger, 6, np.random.default_rng(2))]
    _problem(till.submit(client, other, moved), 422, "face-changed")
