"""Schemathesis against the app's own OpenAPI, in process, on the real engine and real faces.

Every operation is called with generated requests (valid and invalid per the schema, the
coverage phase's boundary values, unexpected methods), the right API key for its scope (now
and then a wrong, unknown or missing one), a device signature over the exact bytes sent where
the route wants one, and often real ids (subjects enrolled from real photos, the terminal's
merchant and store, ledger entries, fresh liveness sessions), a valid sale and real face photos
in place of generated ones, so that the fuzzing reaches past the 401s and 404s into the flows.

Each answer must not be a 5xx; its status code, content type, headers and body must be the ones
the OpenAPI documents (problem+json for errors). Bounded and deterministic: a fixed number of
examples per operation, derandomized; the test's own choices are seeded by the generated case.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from api_helpers import Network, Terminal, enrol, network_on, new_terminal
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from facekey.config import Settings
from facekey.errors import LivenessLocked
from facekey.flows import liveness
from facekey.flows.auth import authenticate
from facekey.flows.devices import DeviceIdentity, add_device
from facekey.flows.platform import Platform
from facekey.security.signing import signed_headers
from facekey.service.app import create_app
from fleet_helpers import enrolment_token

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Generated examples per operation, besides the explicit ones: the run stays within minutes.
EXAMPLES = 40

_CONSENT = json.dumps(
    {"purposes": ["payment", "personalization"], "terms_version": "2026-01", "channel": "app"}
)
_PHONE, _PIN = "+44 20 7946 5678", "2468"
#: The keys a route takes, by (method, path template); None: no key.
_SCOPES: dict[tuple[str, str], tuple[str | None, ...]] = {
    ("GET", "/healthz"): (None,),
    ("GET", "/readyz"): (None,),
    ("GET", "/metrics"): (None,),
    ("POST", "/v1/subjects"): ("enrol",),
    ("POST", "/v1/subjects/{subject_id}/images"): ("enrol",),
    ("POST", "/v1/subjects/{subject_id}/verify"): ("terminal", "enrol"),
    ("GET", "/v1/subjects/{subject_id}/export"): ("privacy",),
    ("POST", "/v1/subjects/{subject_id}/consents/{purpose}/withdraw"): ("privacy",),
    ("DELETE", "/v1/subjects/{subject_id}"): ("privacy",),
    ("POST", "/v1/identify"): ("terminal",),
    ("POST", "/v1/checkout"): ("terminal",),
    ("POST", "/v1/checkout/{authorization_id}/step-up"): ("terminal",),
    ("GET", "/v1/authorizations/{authorization_id}"): ("terminal",),
    ("GET", "/v1/admin/daily-totals"): ("admin",),
    ("PUT", "/v1/subjects/{subject_id}/preferences/{merchant_id}"): ("enrol",),
    ("PUT", "/v1/subjects/{subject_id}/exclusions/{merchant_id}"): ("privacy",),
    ("DELETE", "/v1/subjects/{subject_id}/exclusions/{merchant_id}"): ("privacy",),
    ("POST", "/v1/liveness/sessions"): ("enrol", "terminal"),
    ("POST", "/v1/liveness/sessions/{session_id}/frames"): ("enrol", "terminal"),
    ("POST", "/v1/fleet/enrol"): (None,),
    ("POST", "/v1/fleet/heartbeat"): ("terminal",),
    ("GET", "/v1/fleet/config"): ("terminal",),
    ("POST", "/v1/fleet/screening-counts"): ("terminal",),
    ("POST", "/v1/fleet/enrolment-tokens"): ("admin",),
    ("GET", "/v1/fleet/devices"): ("admin",),
    ("GET", "/v1/fleet/devices/{device_id}"): ("admin",),
    ("POST", "/v1/fleet/devices/{device_id}/disable"): ("admin",),
    ("PUT", "/v1/fleet/devices/{device_id}/pin"): ("admin",),
    ("DELETE", "/v1/fleet/devices/{device_id}/pin"): ("admin",),
    ("POST", "/v1/fleet/releases"): ("admin",),
    ("PATCH", "/v1/fleet/releases/{release_id}"): ("admin",),
    ("GET", "/v1/fleet/screening"): ("admin",),
}
#: Terminal calls of these routes are signed by the device over the raw body.
_SIGNED = {
    "/v1/checkout",
    "/v1/checkout/{authorization_id}/step-up",
    "/v1/liveness/sessions",
    "/v1/liveness/sessions/{session_id}/frames",
    "/v1/fleet/heartbeat",
    "/v1/fleet/config",
    "/v1/fleet/screening-counts",
}
#: Operations that end a subject or a purpose draw from subjects kept for them.
_DISPOSING = {"/v1/subjects/{subject_id}", "/v1/subjects/{subject_id}/consents/{purpose}/withdraw"}
#: Disabling draws from devices kept for it (the terminal's must go on paying).
_DISABLING = "/v1/fleet/devices/{device_id}/disable"


@dataclass(frozen=True, repr=False)
class World:
    """A network with real subjects, a terminal, ledger entries, and real face images."""

    platform: Platform
    network: Network
    terminal: Terminal
    #: Subjects the fuzzing uses but does not erase, and subjects it may erase or withdraw.
    subjects: tuple[str, ...]
    disposable: tuple[str, ...]
    authorizations: tuple[str, ...]
    #: Other devices of the terminal's store (which may be disabled), a release, tokens.
    devices: tuple[str, ...]
    release_id: str
    tokens: tuple[str, ...]
    faces: tuple[bytes, ...]
    #: A face of someone not enrolled (its first enrolment is a 201, later ones a 422).
    newcomers: tuple[bytes, ...]
    frames: tuple[bytes, ...]


def _enrolled(client: TestClient, network: Network, photo: Path, **fields: str) -> str:
    answer = enrol(client, network, photo, consent=_CONSENT, phone=_PHONE, **fields)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["subject_id"])


@pytest.fixture(scope="module")
def world(platform: Platform, client: TestClient, lfw: Path, fixtures: Path) -> World:
    network = network_on(platform, platform.settings.engine)
    terminal = new_terminal(platform, network)
    kept = [_enrolled(client, network, lfw / "Aaron_Peirsol_0001.jpg")]
    kept.append(_enrolled(client, network, lfw / "Aaron_Sorkin_0001.jpg", pin=_PIN))
    # Single, unmasked faces of other people: theirs may be erased or their consent withdrawn.
    others = [
        lfw / "Abdel_Nasser_Assidi_0001.jpg",
        fixtures / "blazeface" / "Allen_Iverson_0001.jpg",
    ]
    others += [
        fixtures / "liveness" / n for n in ("head-turn-0100.jpg", "nuaa-live-0001_00_00_01_0.jpg")
    ]
    disposable = [_enrolled(client, network, photo) for photo in others]
    probe = (lfw / "Aaron_Sorkin_0002.jpg").read_bytes()
    ledger = []
    for key, amount in (("fuzz-paid", 1250), ("fuzz-step-up", 20_000)):
        answer = terminal.post(
            client,
            "/v1/checkout",
            terminal.sale(key, amount),
            [("image", ("probe.jpg", probe + key.encode(), "image/jpeg"))],
        )
        assert answer.status_code == 200, answer.text
        ledger.append(answer.json()["authorization_id"])
    faces = tuple(
        (lfw / f"{name}.jpg").read_bytes()
        for name in ("Aaron_Peirsol_0002", "Aaron_Sorkin_0002", "Abdel_Nasser_Assidi_0002")
    )
    newcomers = ((fixtures / "liveness" / "pad-image_T1.jpg").read_bytes(),)
    admin = network.auth("admin")
    devices = tuple(
        add_device(platform.database, platform.vault, network.id, terminal.store_id).device_id
        for _ in range(3)
    )
    release = client.post("/v1/fleet/releases", headers=admin, json={"software_version": "1.0"})
    assert release.status_code == 201, release.text
    tokens = tuple(enrolment_token(client, admin, terminal.store_id) for _ in range(3))
    frames = tuple(p.read_bytes() for p in sorted((fixtures / "liveness").glob("head-turn-*.jpg")))
    return World(
        platform,
        network,
        terminal,
        tuple(kept),
        tuple(disposable),
        tuple(ledger),
        devices,
        release.json()["release_id"],
        tokens,
        faces,
        newcomers,
        frames,
    )


@pytest.fixture(scope="module")
def app(world: World) -> FastAPI:
    return create_app(world.platform.settings, platform=world.platform)


# The OpenAPI of the app as built (building it needs no platform); each operation is a test.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(data_dir=Path("unused"))).openapi(),
    config=schemathesis.config.SchemathesisConfig.from_dict(
        {
            "seed": 13,
            "generation": {"mode": "all", "deterministic": True, "max-examples": EXAMPLES},
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


@schema.parametrize()
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # cases with real photos
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: Any, world: World, app: FastAPI) -> None:
    """No 5xx; every status, content type and body is the one the OpenAPI documents."""
    pick = _choices(case)
    path = case.operation.path
    scope = pick.choice(_SCOPES[(case.operation.method.upper(), path)])
    _use_real_ids(case, pick, world, scope)
    _use_real_values(case, pick, world)
    headers = _auth(world.network, scope, pick) if scope else {}
    signer = None
    if scope == "terminal" and path in _SIGNED and pick.random() < 0.9:
        signer = _DeviceSignature(world.terminal)
    response = case.call(app=app, headers=headers, auth=signer)
    STATS.setdefault(f"{case.operation.method.upper()} {path}", []).append(response.status_code)
    case.validate_response(response, checks=CHECKS)


#: The statuses each operation answered (by "METHOD path"), over this module's run.
STATS: dict[str, list[int]] = {}


def test_the_fuzzing_reached_every_operation() -> None:
    """Past the 401s, 404s and 422s: each operation answered a 2xx at least once (so its
    success body was checked against its schema). Runs after the fuzzing (file order)."""
    operations = {f"{method} {path}" for method, path in _SCOPES}
    if not operations <= STATS.keys():
        pytest.skip("the fuzzing of some operations was not selected in this run")
    unreached = sorted(op for op in operations if not any(200 <= s < 300 for s in STATS[op]))
    assert not unreached, {op: sorted(set(STATS[op])) for op in unreached}


def test_every_operation_documents_its_answers() -> None:
    """A typed 2xx body (a model, a list of one, or plain text for metrics) and
    problem+json for every error."""
    spec = create_app(Settings(data_dir=Path("unused"))).openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            answers = operation["responses"]
            ok = [code for code in answers if code.startswith("2")]
            assert len(ok) == 1, label
            content = answers[ok[0]]["content"]
            schema_of = next(iter(content.values()))["schema"]
            typed = schema_of.get("$ref") or schema_of.get("items", {}).get("$ref")
            assert typed or schema_of.get("type") == "string", label
            for code, answer in answers.items():
                if code.startswith(("4", "5")) and path != "/readyz":
                    assert set(answer["content"]) == {"application/problem+json"}, label
    assert "Problem" in spec["components"]["schemas"]


# ---------------------------------------------------------------------- choices


def _choices(case: Any) -> random.Random:
    """The test's own choices, seeded by the generated case: the same case, the same choices
    (Schemathesis' explicit and coverage examples cannot take a Hypothesis strategy)."""
    drawn = (case.method, case.path, case.path_parameters, case.query, case.headers, case.body)
    return random.Random(hashlib.sha256(repr(drawn).encode()).digest())


def _auth(network: Network, scope: str, pick: random.Random) -> dict[str, str]:
    """The scope's key; now and then another scope's, an unknown one or none."""
    roll = pick.random()
    if roll < 0.04:
        return {}
    if roll < 0.08:
        return {"Authorization": f"Bearer fk_{scope}_{pick.getrandbits(128):032x}"}
    if roll < 0.12:
        return network.auth(pick.choice(sorted(network.keys)))
    return network.auth(scope)


class _DeviceSignature(requests.auth.AuthBase):
    """Signs the prepared request over the body bytes as sent, as a terminal does."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        url = urlsplit(request.url or "")
        request.headers.update(
            signed_headers(
                device_id=self.terminal.device_id,
                secret=self.terminal.secret,
                method=request.method or "POST",
                path=url.path + (f"?{url.query}" if url.query else ""),
                body=body.encode() if isinstance(body, str) else body,
            )
        )
        return request


def _use_real_ids(case: Any, pick: random.Random, world: World, scope: str | None) -> None:
    """Real subjects, merchants, ledger entries and sessions, more often than not."""
    params = case.path_parameters
    if not params:
        return
    subjects = world.disposable if case.operation.path in _DISPOSING else world.subjects
    devices = world.devices if case.operation.path == _DISABLING else (world.terminal.device_id,)
    real: dict[str, Callable[[], str]] = {
        "device_id": lambda: pick.choice(devices),
        "release_id": lambda: world.release_id,
        "subject_id": lambda: pick.choice(subjects),
        "merchant_id": lambda: world.terminal.merchant_id,
        "authorization_id": lambda: pick.choice(world.authorizations),
        "session_id": lambda: _fresh_session(world, scope or "enrol"),
        "purpose": lambda: pick.choice(["payment", "personalization", "image_retention"]),
    }
    for name, value in real.items():
        if name in params and pick.random() < 0.6:
            params[name] = value()


def _fresh_session(world: World, scope: str) -> str:
    """A new passive liveness session of the caller (a terminal's is bound to its device)."""
    principal = authenticate(world.platform, world.network.keys[scope])
    terminal = world.terminal
    device = None
    if scope == "terminal":
        device = DeviceIdentity(
            terminal.device_id, world.network.id, terminal.store_id, terminal.merchant_id
        )
    try:
        return liveness.create_session(world.platform, principal, device, "passive").session_id
    except LivenessLocked:  # the fuzzing failed this device's sessions: it is locked a while
        return "00000000-0000-4000-8000-000000000000"


def _use_real_values(case: Any, pick: random.Random, world: World) -> None:
    """A valid sale, purpose, day or step-up answer, and real photos, now and then."""
    path = case.operation.path
    query = case.query if isinstance(case.query, dict) else None
    if path.endswith(("/daily-totals", "/screening")) and query is not None and pick.random() < 0.5:
        query["day"] = f"2026-{pick.randint(1, 12):02d}-{pick.randint(1, 28):02d}"
    body = case.body
    if not isinstance(body, dict):
        return
    if path == "/v1/subjects" and pick.random() < 0.5:
        newcomer = pick.choice(world.newcomers) + pick.randbytes(8)
        body |= {"consent": _CONSENT, "phone": _PHONE, "images": [newcomer]}
        for other in ("liveness_session_id", "pin"):
            body.pop(other, None)
    if path == "/v1/checkout" and pick.random() < 0.6:
        terminal = world.terminal
        body |= terminal.sale(f"fuzz-{pick.getrandbits(64):x}", pick.randint(1, 30_000))
    _use_real_fleet_values(path, body, pick, world)
    if "purpose" in body and pick.random() < 0.5:
        body["purpose"] = "payment"
    if path.endswith("/step-up") and pick.random() < 0.5:
        body.pop("pin" if pick.random() < 0.5 else "phone_digits", None)
        body |= pick.choice([{"phone_digits": _PHONE[-4:]}, {"pin": _PIN}])
    if pick.random() < 0.3 and path != "/v1/subjects":
        _use_real_photos(body, pick, world)


def _use_real_fleet_values(
    path: str, body: dict[str, Any], pick: random.Random, world: World
) -> None:
    """An enrolment token, the terminal's store, a valid heartbeat or hour, now and then."""
    if not path.startswith("/v1/fleet/") or pick.random() >= 0.5:
        return
    if path == "/v1/fleet/enrol":
        body["token"] = pick.choice(world.tokens)
    elif path == "/v1/fleet/heartbeat":
        body |= {"software_version": "1.0", "uptime_s": pick.randint(0, 10**6), "camera": "ok"}
        body["models"] = []
    elif path == "/v1/fleet/screening-counts":
        screened = pick.randint(0, 100)
        hour = f"2026-01-{pick.randint(1, 28):02d}T{pick.randint(0, 23):02d}:00:00+00:00"
        body |= {"hour": hour, "screened": screened, "referred": screened // 2, "failed": 0}
    elif path in ("/v1/fleet/enrolment-tokens", "/v1/fleet/releases") and "store_id" in body:
        body["store_id"] = world.terminal.store_id
    elif path.endswith("/pin"):
        body["release_id"] = world.release_id
    if path == "/v1/fleet/releases":
        body["software_version"] = "1.1"
        body.pop("models", None)


def _use_real_photos(body: dict[str, Any], pick: random.Random, world: World) -> None:
    """Real face photos (never twice the same bytes: a terminal's replayed photo is declined)
    or real liveness frames in place of the generated bytes."""
    if "image" in body:
        body["image"] = pick.choice(world.faces) + pick.randbytes(8)
    if "images" in body:
        body["images"] = [pick.choice(world.faces) + pick.randbytes(8)]
    if "frames" in body:
        body["frames"] = list(world.frames[: pick.randint(3, len(world.frames))])
        body["timestamps"] = json.dumps([i * 100 for i in range(len(body["frames"]))])
