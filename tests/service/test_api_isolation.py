"""Tenant isolation and scopes: every subject route, every key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_helpers import Network, enrol, identify
from fastapi.testclient import TestClient
from sqlalchemy import update

from facekey.flows.platform import Platform
from facekey.flows.tenancy import rotate_keys
from facekey.security.api_keys import parse_token
from facekey.store.tables import ApiKey

SUBJECT_ROUTES = (
    ("GET", "/v1/subjects/{id}/export", "privacy", False),
    ("POST", "/v1/subjects/{id}/consents/payment/withdraw", "privacy", False),
    ("DELETE", "/v1/subjects/{id}", "privacy", False),
    ("POST", "/v1/subjects/{id}/verify", "terminal", True),
    ("POST", "/v1/subjects/{id}/images", "enrol", True),
)


def _call(
    client: TestClient, method: str, path: str, headers: dict[str, str], image: Path | None
) -> int:
    files = None
    data = {"purpose": "payment"} if path.endswith("verify") else None
    if image is not None:
        field = "images" if path.endswith("images") else "image"
        files = [(field, (image.name, image.read_bytes(), "image/jpeg"))]
    return client.request(method, path, headers=headers, data=data, files=files).status_code


@pytest.mark.parametrize(("method", "route", "scope", "needs_image"), SUBJECT_ROUTES)
def test_another_network_cannot_reach_a_subject(
    client: TestClient,
    network: Network,
    other_network: Network,
    lfw: Path,
    method: str,
    route: str,
    scope: str,
    needs_image: bool,
) -> None:
    subject_id = enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg").json()["subject_id"]
    image = lfw / "Aaron_Sorkin_0002.jpg" if needs_image else None
    path = route.format(id=subject_id)
    for key_scope in (scope, "admin"):
        status = _call(client, method, path, other_network.auth(key_scope), image)
        assert status == 404, (route, key_scope, status)
    # The subject is untouched and still matches in its own network.
    body = identify(client, network, lfw / "Aaron_Sorkin_0002.jpg").json()
    assert body["match"] == subject_id


def test_another_network_cannot_match_a_subject(
    client: TestClient, network: Network, other_network: Network, lfw: Path
) -> None:
    subject_id = enrol(client, network, lfw / "Aaron_Peirsol_0001.jpg").json()["subject_id"]
    body = identify(client, other_network, lfw / "Aaron_Peirsol_0002.jpg").json()
    assert body["match"] is None
    assert body["gallery_size"] == 0  # the other network's search saw none of its templates
    assert identify(client, network, lfw / "Aaron_Peirsol_0002.jpg").json()["match"] == subject_id


@pytest.mark.parametrize(
    ("method", "route", "scope", "needs_image"),
    [*SUBJECT_ROUTES, ("POST", "/v1/identify", "terminal", True)],
)
def test_wrong_scope_is_forbidden(
    client: TestClient,
    network: Network,
    lfw: Path,
    method: str,
    route: str,
    scope: str,
    needs_image: bool,
) -> None:
    subject_id = enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg").json()["subject_id"]
    image = lfw / "Aaron_Sorkin_0002.jpg" if needs_image else None
    if route == "/v1/identify":
        image = lfw / "Aaron_Sorkin_0002.jpg"
    wrong = [s for s in ("enrol", "terminal", "privacy") if s != scope]
    if route.endswith("verify"):
        wrong = ["privacy"]  # verification is open to terminal and enrolment keys
    for key_scope in wrong:
        response_status = _call(
            client, method, route.format(id=subject_id), network.auth(key_scope), image
        )
        assert response_status == 403, (route, key_scope)


def test_enrolment_needs_an_enrol_key(client: TestClient, network: Network, lfw: Path) -> None:
    for scope in ("terminal", "privacy"):
        response = client.post(
            "/v1/subjects",
            headers=network.auth(scope),
            data={"consent": '{"purposes": ["payment"], "terms_version": "1", "channel": "x"}'},
            files=[
                ("images", ("a.jpg", (lfw / "Aaron_Sorkin_0001.jpg").read_bytes(), "image/jpeg"))
            ],
        )
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer fk_admin_" + "x" * 56],
)
def test_missing_or_malformed_key(client: TestClient, lfw: Path, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.post(
        "/v1/identify",
        headers=headers,
        files=[("image", ("a.jpg", (lfw / "Aaron_Sorkin_0001.jpg").read_bytes(), "image/jpeg"))],
    )
    assert response.status_code == 401
    assert response.json()["status"] == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_revoked_key(client: TestClient, platform: Platform, network: Network, lfw: Path) -> None:
    rotated = rotate_keys(platform.database, network.id)
    old = identify(client, network, lfw / "Aaron_Sorkin_0001.jpg")
    assert old.status_code == 401 and "revoked" in old.json()["detail"]
    fresh = Network(network.id, rotated.api_keys)
    assert identify(client, fresh, lfw / "Aaron_Sorkin_0001.jpg").status_code == 200


def test_expired_key(client: TestClient, platform: Platform, network: Network, lfw: Path) -> None:
    key_id = parse_token(network.keys["terminal"]).key_id
    with platform.database.session() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.key_id == key_id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    response = identify(client, network, lfw / "Aaron_Sorkin_0001.jpg")
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_tampered_secret(client: TestClient, network: Network, lfw: Path) -> None:
    token = network.keys["terminal"]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    bad = Network(network.id, {"terminal": tampered})
    assert identify(client, bad, lfw / "Aaron_Sorkin_0001.jpg").status_code == 401
