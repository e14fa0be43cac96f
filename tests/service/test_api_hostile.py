"""Regressions of a hostile review: every input here once gave a plain-text 500 or was
accepted when it should not have been. Each answer is problem+json with a request id."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from api_helpers import CONSENT, Network, enrol, image_file, new_terminal
from fastapi.testclient import TestClient
from PIL import Image

from facekey import imaging
from facekey.flows import search
from facekey.flows.platform import Platform
from facekey.service.app import create_app

BOTH = json.dumps(
    {"purposes": ["payment", "personalization"], "terms_version": "2026-01", "channel": "app"}
)


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_a_far_future_day_is_refused(client: TestClient, network: Network) -> None:
    response = client.get(
        "/v1/admin/daily-totals", params={"day": "9999-12-31"}, headers=network.auth("admin")
    )
    _problem(response, 422)
    ok = client.get(
        "/v1/admin/daily-totals", params={"day": "2026-12-01"}, headers=network.auth("admin")
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 40 + b"1" + b"}" * 40,
        b'["not", "an", "object"]',
        b'"a string"',
        b"not json",
        b"{}" + b" " * 5000,
    ],
    ids=["nested-10000", "nested-40", "a list", "a string", "not json", "too long"],
)
def test_preferences_must_be_a_small_json_object(
    client: TestClient, network: Network, platform: Platform, lfw: Path, body: bytes
) -> None:
    subject = enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg", consent=BOTH).json()
    merchant = new_terminal(platform, network).merchant_id
    path = f"/v1/subjects/{subject['subject_id']}/preferences/{merchant}"
    headers = network.auth("enrol") | {"Content-Type": "application/json"}
    _problem(client.put(path, content=body, headers=headers), 422)
    fine = client.put(path, content=b'{"milk": "oat"}', headers=headers)
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("9" * 30, "EUR"),
        ("²", "EUR"),
        ("١٢٣", "EUR"),
        ("𝟙𝟚𝟛", "EUR"),
        ("-5", "EUR"),
        ("0", "EUR"),
        ("500", "XXX"),
        ("500", "XTS"),
        ("500", "eur"),
        ("500", "ZZZ"),
    ],
)
def test_amounts_are_ascii_digits_and_currencies_in_use(
    client: TestClient,
    network: Network,
    platform: Platform,
    lfw: Path,
    amount: str,
    currency: str,
) -> None:
    terminal = new_terminal(platform, network)
    sale = terminal.sale(f"key-{amount}-{currency}") | {"amount": amount, "currency": currency}
    files = [image_file(lfw / "Aaron_Sorkin_0002.jpg", "image")]
    _problem(terminal.post(client, "/v1/checkout", sale, files), 422)


def test_two_images_are_an_error_not_a_silent_pick(
    client: TestClient, network: Network, platform: Platform, lfw: Path
) -> None:
    two = [
        image_file(lfw / "Aaron_Sorkin_0002.jpg", "image"),
        image_file(lfw / "Aaron_Peirsol_0002.jpg", "image"),
    ]
    identified = client.post(
        "/v1/identify", headers=network.auth("terminal"), data={"purpose": "payment"}, files=two
    )
    _problem(identified, 422)
    subject = enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg").json()["subject_id"]
    verified = client.post(
        f"/v1/subjects/{subject}/verify",
        headers=network.auth("terminal"),
        data={"purpose": "payment"},
        files=two,
    )
    _problem(verified, 422)
    terminal = new_terminal(platform, network)
    _problem(terminal.post(client, "/v1/checkout", terminal.sale("two"), two), 422)


def test_anything_a_route_lets_escape_is_a_problem_with_a_request_id(
    platform: Platform, network: Network, lfw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(search, "identify", broken)
    app = create_app(platform.settings, platform=platform)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/identify",
            headers=network.auth("terminal") | {"X-Request-ID": "trace-me-123"},
            files=[image_file(lfw / "Aaron_Sorkin_0002.jpg", "image")],
        )
    body = _problem(response, 500)
    assert body["request_id"] == "trace-me-123"
    assert "a bug" not in response.text  # internals stay in the log


def test_every_answer_carries_a_request_id(client: TestClient, network: Network) -> None:
    ok = client.get("/healthz")
    assert len(ok.headers["x-request-id"]) >= 8
    refused = client.post("/v1/subjects", headers=network.auth("enrol"), data={"consent": CONSENT})
    assert refused.json()["request_id"] == refused.headers["x-request-id"]


def test_a_large_jpeg_is_answered_and_a_busy_lane_says_retry(
    client: TestClient, network: Network, lfw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review's 6000×6000 JPEG took 31-39 s and 1.5 GB, then a 422."""
    face = Image.open(lfw / "Aaron_Sorkin_0001.jpg").resize((6000, 6000))
    buffer = io.BytesIO()
    face.save(buffer, "JPEG", quality=40)
    large = [("image", ("large.jpg", buffer.getvalue(), "image/jpeg"))]
    subject = enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg").json()["subject_id"]
    verified = client.post(
        f"/v1/subjects/{subject}/verify",
        headers=network.auth("terminal"),
        data={"purpose": "payment"},
        files=large,
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["match"] is True
    monkeypatch.setattr(imaging, "LARGE_LANE_WAIT_S", 0.05)
    assert imaging._LARGE_LANE.acquire(timeout=1)
    try:
        busy = client.post(
            "/v1/identify",
            headers=network.auth("terminal"),
            data={"purpose": "payment"},
            files=large,
        )
    finally:
        imaging._LARGE_LANE.release()
    body = _problem(busy, 503)
    assert busy.headers["retry-after"] == str(body["retry_after"])


def test_every_problem_title_is_plain_words() -> None:
    """Titles are read by people: no code quotes, no field names, one sentence."""
    import inspect

    from facekey import errors
    from facekey.service.problems import _title

    for _name, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.FacekeyError):
            title = _title(cls.__new__(cls))
            assert "`" not in title and "_id" not in title, (cls, title)
            assert not title.endswith((",", ";", "(")), (cls, title)
            assert " a enrol" not in title and " a admin" not in title, (cls, title)
