"""Helpers of the API tests: a network's keys, and enrol / identify calls with image files."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from facekey.flows.devices import add_device, add_merchant, add_store
from facekey.flows.platform import Platform
from facekey.flows.tenancy import create_network
from facekey.security.signing import decode_secret, signed_headers

CONSENT = json.dumps({"purposes": ["payment"], "terms_version": "2026-01", "channel": "kiosk"})


@dataclass(frozen=True)
class Network:
    id: str
    keys: dict[str, str]

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


def network_on(platform: Platform, engine: str, *, retain_images: bool = False) -> Network:
    """A new network whose galleries use ``engine``."""
    created = create_network(
        platform.database,
        platform.vault,
        f"{engine}-{uuid.uuid4().hex}",
        engine=engine,
        retain_images=retain_images,
    )
    return Network(created.network_id, created.api_keys)


def image_file(path: Path, field: str = "images") -> tuple[str, tuple[str, bytes, str]]:
    return (field, (path.name, path.read_bytes(), "image/jpeg"))


def enrol(
    client: TestClient,
    network: Network,
    *paths: Path,
    consent: str = CONSENT,
    **fields: str,
) -> Any:
    return client.post(
        "/v1/subjects",
        headers=network.auth("enrol"),
        data={"consent": consent, **fields},
        files=[image_file(p) for p in paths],
    )


def identify(client: TestClient, network: Network, path: Path, **fields: str) -> Any:
    return client.post(
        "/v1/identify",
        headers=network.auth("terminal"),
        data=fields,
        files=[image_file(path, "image")],
    )


def verify(client: TestClient, network: Network, subject_id: str, path: Path, purpose: str) -> Any:
    return client.post(
        f"/v1/subjects/{subject_id}/verify",
        headers=network.auth("terminal"),
        data={"purpose": purpose},
        files=[image_file(path, "image")],
    )


def multipart(
    fields: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]] | None = None
) -> tuple[bytes, str]:
    """(body, content type) of a multipart form, built by hand so it can be signed."""
    boundary = "facekeyboundary7d1e"
    parts = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    for name, (filename, data, content_type) in files or []:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class Terminal:
    """A registered checkout terminal that signs its calls."""

    network: Network
    merchant_id: str
    store_id: str
    device_id: str
    secret: bytes

    def send(
        self,
        client: TestClient,
        path: str,
        body: bytes,
        content_type: str,
        *,
        now: float | None = None,
        nonce: str | None = None,
        secret: bytes | None = None,
    ) -> Any:
        """POST ``body`` signed by this device (or with ``secret``, to forge a signature)."""
        headers = signed_headers(
            device_id=self.device_id,
            secret=secret or self.secret,
            method="POST",
            path=path,
            body=body,
            now=now,
            nonce=nonce,
        )
        headers |= self.network.auth("terminal") | {"Content-Type": content_type}
        return client.post(path, content=body, headers=headers)

    def post(
        self,
        client: TestClient,
        path: str,
        fields: dict[str, str],
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
        **signing: Any,
    ) -> Any:
        """A signed multipart POST."""
        body, content_type = multipart(fields, files)
        return self.send(client, path, body, content_type, **signing)

    def sale(self, key: str, amount: int = 1250) -> dict[str, str]:
        """The form fields of a sale at this terminal's store."""
        return {
            "amount": str(amount),
            "currency": "EUR",
            "merchant_id": self.merchant_id,
            "store_id": self.store_id,
            "idempotency_key": key,
        }


def new_terminal(
    platform: Platform, network: Network, merchant: str = "Corner Shop", device: str = "till 1"
) -> Terminal:
    """A merchant, a store and a device registered in ``network``."""
    merchant_id = add_merchant(platform.database, network.id, merchant).merchant_id
    store_id = add_store(platform.database, network.id, merchant_id, "High Street").store_id
    registered = add_device(platform.database, platform.vault, network.id, store_id, device)
    return Terminal(
        network,
        merchant_id,
        store_id,
        registered.device_id,
        decode_secret(registered.secret),
    )
