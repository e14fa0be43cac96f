"""The checkout terminal agent end to end, on videos made from real frames: a real enrolled
face pays, a printed photo is refused on the device, an unreachable server declines, and the
agent keeps no frame or template after its answer."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edge_helpers import auth, enrol_face
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facekey.edge.agent import AgentSettings, CheckoutAgent, Sale
from facekey.edge.config import DeviceConfig
from facekey.edge.frames import Frame, open_source
from facekey.edge.transport import DeviceClient
from facekey.engines.face_reid import FaceReidEngine
from facekey.flows.platform import Platform
from facekey.liveness.session import DEFAULT_DETECTORS, LivenessChecker
from facekey.pipeline import Face, FacePipeline
from facekey.store.tables import Authorization, LivenessSession
from facekey.templates import Template
from facekey.vision.detectors import make_detector
from fleet_helpers import config_of, device_client, provision


@pytest.fixture(scope="session")
def models(reid_engine: FaceReidEngine) -> tuple[LivenessChecker, FacePipeline]:
    """The on-device models, as :func:`facekey.edge.agent.build_agent` puts them together."""
    detector = make_detector(DEFAULT_DETECTORS)
    return LivenessChecker(detector=detector), FacePipeline(engine=reid_engine, detector=detector)


@pytest.fixture
def till(edge_client: TestClient, shop: tuple[str, dict[str, str], str]) -> DeviceConfig:
    _, keys, store_id = shop
    return config_of(provision(edge_client, auth(keys["admin"]), store_id))


def _agent(
    client: DeviceClient, config: DeviceConfig, models: Any, mode: str = "session"
) -> CheckoutAgent:
    settings = AgentSettings(config.merchant_id, config.store_id, burst_frames=8, mode=mode)  # type: ignore[arg-type]
    return CheckoutAgent(client, settings, *models)


def _rows(platform: Platform, table: Any, device_id: str) -> int:
    with platform.database.session() as session:
        stmt = select(func.count()).select_from(table).where(table.device_id == device_id)
        return int(session.execute(stmt).scalar_one())


@pytest.mark.parametrize("mode", ["session", "template"])
def test_a_real_face_on_video_pays(
    edge_client: TestClient,
    edge_platform: Platform,
    shop: tuple[str, dict[str, str], str],
    till: DeviceConfig,
    models: Any,
    face_video: Path,
    liveness_frames: Path,
    mode: str,
) -> None:
    enrol_face(edge_client, shop[1], liveness_frames / "head-turn-0100.jpg")
    agent = _agent(device_client(edge_client, till), till, models, mode)
    outcome = agent.checkout(Sale(1250, "EUR"), open_source(str(face_video)).frames())
    assert (outcome.decision, outcome.reason) == ("approved", "approved"), outcome
    assert outcome.authorization_id and outcome.sent_to_server
    assert _rows(edge_platform, Authorization, till.device_id) == 1
    # the template mode sends a template, never a frame: no liveness session
    sessions = _rows(edge_platform, LivenessSession, till.device_id)
    assert sessions == (1 if mode == "session" else 0)


def test_a_step_up_asks_the_phone_digits(
    edge_client: TestClient,
    shop: tuple[str, dict[str, str], str],
    till: DeviceConfig,
    models: Any,
    face_video: Path,
    liveness_frames: Path,
) -> None:
    enrol_face(edge_client, shop[1], liveness_frames / "head-turn-0100.jpg", phone="+4915112345678")
    agent = _agent(device_client(edge_client, till), till, models)
    asked: list[str] = []

    def digits() -> str:
        asked.append("digits")
        return "5678"

    large = Sale(50_000, "EUR")  # above the step-up amount: always asked
    outcome = agent.checkout(large, open_source(str(face_video)).frames(), ask_digits=digits)
    assert asked == ["digits"] and outcome.decision == "approved", outcome
    cancelled = agent.checkout(large, open_source(str(face_video)).frames())
    assert (cancelled.decision, cancelled.reason) == ("declined", "step_up_cancelled")


def test_a_printed_photo_is_refused_on_the_device(
    edge_client: TestClient,
    edge_platform: Platform,
    shop: tuple[str, dict[str, str], str],
    till: DeviceConfig,
    models: Any,
    photo_video: Path,
    liveness_frames: Path,
) -> None:
    enrol_face(edge_client, shop[1], liveness_frames / "nuaa-live-0001_00_00_01_0.jpg")
    agent = _agent(device_client(edge_client, till), till, models)
    outcome = agent.checkout(Sale(1250, "EUR"), open_source(str(photo_video)).frames())
    assert (outcome.decision, outcome.reason, outcome.sent_to_server) == (
        "declined",
        "liveness",
        False,
    )
    assert _rows(edge_platform, LivenessSession, till.device_id) == 0
    assert _rows(edge_platform, Authorization, till.device_id) == 0


def test_an_unreachable_server_declines_on_the_spot(
    till: DeviceConfig, models: Any, face_video: Path
) -> None:
    client = DeviceClient(
        "http://127.0.0.1:9",
        device_id=till.device_id,
        secret=till.secret,
        api_key=till.api_key,
        timeout=2,
    )
    outcome = _agent(client, till, models).checkout(
        Sale(1250, "EUR"), open_source(str(face_video)).frames()
    )
    assert (outcome.decision, outcome.reason) == ("declined", "server_unreachable")
    assert "nothing was charged" in outcome.message


def _alive(kind: type) -> set[int]:
    return {id(o) for o in gc.get_objects() if isinstance(o, kind)}


def test_nothing_biometric_survives_the_answer(
    edge_client: TestClient,
    shop: tuple[str, dict[str, str], str],
    till: DeviceConfig,
    models: Any,
    face_video: Path,
    liveness_frames: Path,
) -> None:
    enrol_face(edge_client, shop[1], liveness_frames / "head-turn-0100.jpg", phone="+4915112345678")
    agent = _agent(device_client(edge_client, till), till, models, "template")
    frames: list[weakref.ref[np.ndarray]] = []

    def watched() -> Iterator[Frame]:
        for frame in open_source(str(face_video)).frames():
            frames.append(weakref.ref(frame.image))
            yield frame

    gc.collect()
    templates, faces = _alive(Template), _alive(Face)
    outcome = agent.checkout(Sale(50_000, "EUR"), watched(), ask_digits=lambda: "5678")
    assert outcome.decision == "approved", outcome
    gc.collect()
    assert frames and all(ref() is None for ref in frames), "a frame is still referenced"
    assert _alive(Template) <= templates, "a template is still held"
    assert _alive(Face) <= faces, "a face is still held"
    assert "template" not in repr(outcome) and "image" not in repr(outcome)
