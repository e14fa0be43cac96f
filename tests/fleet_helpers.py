"""Helpers of the fleet and edge tests: a store, a device provisioned through the API with a
one-time token, and that device's signed client over a test client."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from facekey.edge.config import DeviceConfig
from facekey.edge.transport import DeviceClient, enrol
from facekey.flows.devices import add_merchant, add_store
from facekey.flows.platform import Platform
from facekey.security.signing import decode_secret


def new_store(platform: Platform, network_id: str, merchant: str = "Corner Shop") -> str:
    """A merchant and one of its stores; the store's id."""
    merchant_id = add_merchant(platform.database, network_id, merchant).merchant_id
    return str(add_store(platform.database, network_id, merchant_id, "High Street").store_id)


def enrolment_token(client: TestClient, admin: dict[str, str], store_id: str, **extra: Any) -> str:
    """A one-time token from the admin route."""
    response = client.post(
        "/v1/fleet/enrolment-tokens", headers=admin, json={"store_id": store_id, **extra}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def provision(client: TestClient, admin: dict[str, str], store_id: str) -> dict[str, Any]:
    """A device enrolled with a fresh token, as the device sees the answer."""
    return enrol("http://testserver", enrolment_token(client, admin, store_id), http=client)


def config_of(enrolment: dict[str, Any], server: str = "http://testserver") -> DeviceConfig:
    """The device configuration an enrolment answer makes."""
    return DeviceConfig(
        server=server,
        device_id=enrolment["device_id"],
        network_id=enrolment["network_id"],
        store_id=enrolment["store_id"],
        merchant_id=enrolment["merchant_id"],
        api_key=enrolment["api_key"],
        secret=decode_secret(enrolment["secret"]),
    )


def device_client(client: TestClient, config: DeviceConfig) -> DeviceClient:
    """The device's signed client, through the test client."""
    return DeviceClient(
        config.server,
        device_id=config.device_id,
        secret=config.secret,
        api_key=config.api_key,
        http=client,
    )
