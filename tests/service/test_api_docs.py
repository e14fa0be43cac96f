"""The API's own description: /docs works offline, and it says how to authenticate."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from facekey.security.signing import HEADER_DEVICE, HEADER_SIGNATURE


def test_docs_load_every_asset_from_the_server_itself(client: TestClient) -> None:
    """/docs used to load Swagger UI from a CDN: blank without internet."""
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets, page.text
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by facekey"
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 500, asset
    assert "/openapi.json" in page.text
    assert client.get("/redoc").status_code == 404  # ReDoc's page needs a CDN: none is served


def test_the_api_declares_its_keys_and_the_terminal_signature(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKey"] == schemes["apiKey"] | {"type": "http", "scheme": "bearer"}
    headers = {s["name"] for s in schemes.values() if s["type"] == "apiKey"}
    assert {HEADER_DEVICE, HEADER_SIGNATURE} <= headers
    paths = schema["paths"]
    # A signed route needs the key and all four headers together: one requirement.
    [checkout] = paths["/v1/checkout"]["post"]["security"]
    assert set(checkout) == {
        "apiKey",
        "deviceId",
        "deviceTimestamp",
        "deviceNonce",
        "deviceSignature",
    }
    assert paths["/v1/identify"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in paths["/healthz"]["get"]


def test_a_key_in_another_scheme_is_refused_with_a_bearer_challenge(client: TestClient) -> None:
    refused = client.get("/v1/admin/daily-totals", headers={"Authorization": "Basic abc"})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.headers["content-type"] == "application/problem+json"
