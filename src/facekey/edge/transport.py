"""Signed HTTP calls of a device to its server.

Every call carries the device's API key and its HMAC signature over method, path, body hash,
timestamp and nonce (:mod:`facekey.security.signing`); the body is built first, signed, and
sent exactly as signed. A server that cannot be reached raises
:class:`~facekey.errors.ServerUnreachable` at once: a device never queues a call for later
(a checkout is declined on the spot, a heartbeat is simply missed).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from facekey.client import ApiError
from facekey.errors import ServerUnreachable
from facekey.security.signing import signed_headers

log = logging.getLogger(__name__)

#: A checkout terminal cannot keep a customer waiting longer than this for one call.
DEFAULT_TIMEOUT_S = 15.0

Files = list[tuple[str, tuple[str, bytes, str]]]


class DeviceClient:
    """Calls the server as one device (its id, secret and API key)."""

    def __init__(
        self,
        server: str,
        *,
        device_id: str,
        secret: bytes,
        api_key: str,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._device_id = device_id
        self._secret = secret
        self._owned = http is None
        self._http = http or httpx.Client(base_url=server.rstrip("/"), timeout=timeout)
        self._auth = {"Authorization": f"Bearer {api_key}"}

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (unless it was handed in)."""
        if self._owned:
            self._http.close()

    def post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A signed JSON POST."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        return self._send(self._http.build_request("POST", path, content=body, headers=headers))

    def post_form(
        self, path: str, fields: dict[str, str], files: Files | None = None
    ) -> dict[str, Any]:
        """A signed multipart POST (fields and in-memory files)."""
        request = self._http.build_request("POST", path, data=fields, files=files or None)
        return self._send(request)

    def get(self, path: str) -> dict[str, Any]:
        """A signed GET."""
        return self._send(self._http.build_request("GET", path))

    def _send(self, request: httpx.Request) -> dict[str, Any]:
        body = request.read()
        target = request.url.raw_path.decode("ascii")
        request.headers.update(self._auth)
        request.headers.update(
            signed_headers(
                device_id=self._device_id,
                secret=self._secret,
                method=request.method,
                path=target,
                body=body,
            )
        )
        return answer_of(self._http, request)


def answer_of(http: httpx.Client, request: httpx.Request) -> dict[str, Any]:
    """Send ``request``: its JSON answer; ApiError for a problem, ServerUnreachable when the
    server cannot be reached or answers with something that is not facekey's JSON."""
    try:
        response = http.send(request)
    except httpx.TransportError as exc:
        log.warning("server unreachable: %s", type(exc).__name__)
        raise ServerUnreachable(f"cannot reach the server: {type(exc).__name__}") from exc
    try:
        payload = response.json() if response.content else {}
    except ValueError as exc:
        raise ServerUnreachable(f"the server answered {response.status_code} without JSON") from exc
    if not isinstance(payload, dict):
        raise ServerUnreachable("the server's answer is not a JSON object")
    if response.is_error:
        raise ApiError(response.status_code, payload)
    return payload


def enrol(
    server: str, token: str, *, http: httpx.Client | None = None, timeout: float = 30.0
) -> dict[str, Any]:
    """Present a one-time enrolment token; the device's id, secret and API key (once)."""
    client = http or httpx.Client(base_url=server.rstrip("/"), timeout=timeout)
    try:
        request = client.build_request("POST", "/v1/fleet/enrol", json={"token": token})
        return answer_of(client, request)
    finally:
        if http is None:
            client.close()
