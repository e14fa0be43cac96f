"""Helpers of the API tests: a network's keys, and enrol / identify calls with image files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

CONSENT = json.dumps({"purposes": ["payment"], "terms_version": "2026-01", "channel": "kiosk"})


@dataclass(frozen=True)
class Network:
    id: str
    keys: dict[str, str]

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


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
