"""Calls to one facekey server with one API key: bytes in, JSON out, one error tree.

What goes wrong is a :class:`ClientError`, whose message is one line that names the call and
the server: :class:`ApiError` when the server answered with a problem (RFC 9457; its title,
detail and request id), :class:`ServerUnavailable` when it could not be reached, did not answer
in time or dropped the connection. Every call sends its own ``X-Request-ID``, so even a call
whose answer never came has an id to look up in the server's log.
"""

from __future__ import annotations

import email.utils
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote

import httpx

from facekey.errors import FacekeyError
from facekey.security.signing import decode_secret, signed_headers

REQUEST_ID_HEADER: Final = "X-Request-ID"
DEFAULT_TIMEOUT_S: Final = 60.0

Failure = Literal["refused", "timeout", "dropped", "network"]


class ClientError(FacekeyError):
    """A call to a facekey server failed; the message names the call and the server."""


class ApiError(ClientError):
    """The server answered with a problem; ``status`` and ``problem`` say which."""

    def __init__(
        self,
        status: int,
        problem: dict[str, Any],
        *,
        call: str = "",
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.status = status
        self.problem = problem
        self.call = call
        self.request_id = problem.get("request_id") or request_id
        self.retry_after_s = retry_after_s
        super().__init__(self._message())

    @property
    def slug(self) -> str:
        """The last part of the problem's ``type`` (``duplicate-enrolment``, ...)."""
        return str(self.problem.get("type", "")).rsplit("/", 1)[-1]

    def _message(self) -> str:
        title = str(self.problem.get("title") or "").strip()
        detail = str(self.problem.get("detail") or "").strip()
        said = ": ".join(dict.fromkeys(p for p in (title, detail) if p)) or "no details"
        where = f"{self.call} answered " if self.call else ""
        rid = f" (request_id {self.request_id})" if self.request_id else ""
        return _one_line(f"{where}{self.status} {said}{rid}")


class ServerUnavailable(ClientError):
    """The server could not be reached, did not answer in time, or dropped the connection."""

    def __init__(
        self, server: str, call: str, failure: Failure, reason: str, request_id: str
    ) -> None:
        self.server = server
        self.call = call
        self.failure = failure
        self.reason = reason
        self.request_id = request_id
        what = {
            "refused": f"cannot connect to the facekey server at {server}",
            "timeout": f"the facekey server at {server} did not answer in time",
            "dropped": f"the facekey server at {server} dropped the connection before its "
            "answer was complete",
            "network": f"the network failed between here and the facekey server at {server}",
        }[failure]
        # A request that never reached the server has no id worth quoting.
        rid = "" if failure == "refused" else f"; request_id {request_id}"
        super().__init__(_one_line(f"{what} ({call}: {reason}{rid})"))

    def with_hint(self, hint: str) -> ServerUnavailable:
        """The same failure, its message ending with what the caller can do about it."""
        return ServerUnavailable(
            self.server, self.call, self.failure, f"{self.reason}; {hint}", self.request_id
        )


@dataclass(frozen=True)
class Device:
    """A checkout terminal's id and HMAC secret, which signs its calls (never shown)."""

    id: str
    secret: bytes = field(repr=False)

    @classmethod
    def from_text(cls, device_id: str, secret: str) -> Device:
        """From the id and the base64url secret ``facekey admin add-device`` printed."""
        try:
            return cls(device_id, decode_secret(secret))
        except ValueError as exc:
            raise ClientError(f"the device secret is not usable: {exc}") from None


class FacekeyClient:
    """Calls one facekey server with one API key (and a terminal's :class:`Device` to sign)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        device: Device | None = None,
    ) -> None:
        self.server = base_url.rstrip("/")
        self._device = device
        self._http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def __enter__(self) -> FacekeyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def enrol(
        self,
        images: Sequence[Path],
        *,
        purposes: Sequence[str] = ("payment",),
        terms_version: str,
        channel: str = "cli",
        phone: str | None = None,
        external_ref: str | None = None,
    ) -> dict[str, Any]:
        """Enrol one subject from 1–5 image files."""
        consent = {"purposes": list(purposes), "terms_version": terms_version, "channel": channel}
        fields = {"consent": json.dumps(consent)}
        fields |= {k: v for k, v in (("phone", phone), ("external_ref", external_ref)) if v}
        files = [_file("images", p) for p in images]
        return self._call("POST", "/v1/subjects", data=fields, files=files)

    def identify(self, image: Path, *, purpose: str | None = None) -> dict[str, Any]:
        """1:N search with one image file."""
        fields: dict[str, Any] = {"purpose": purpose} if purpose else {}
        return self._call("POST", "/v1/identify", data=fields, files=[_file("image", image)])

    def verify(self, subject_id: str, image: Path, *, purpose: str) -> dict[str, Any]:
        """1:1: is the face in ``image`` this subject, who consents to ``purpose``?"""
        return self._call(
            "POST",
            f"/v1/subjects/{_segment(subject_id)}/verify",
            data={"purpose": purpose},
            files=[_file("image", image)],
        )

    def export(self, subject_id: str) -> dict[str, Any]:
        """Everything the server holds about a subject (templates as metadata)."""
        return self._call("GET", f"/v1/subjects/{_segment(subject_id)}/export")

    def withdraw(self, subject_id: str, purpose: str) -> dict[str, Any]:
        """Withdraw a subject's consent to one purpose."""
        path = f"/v1/subjects/{_segment(subject_id)}/consents/{_segment(purpose)}/withdraw"
        return self._call("POST", path)

    def erase(self, subject_id: str) -> dict[str, Any]:
        """Erase one subject."""
        return self._call("DELETE", f"/v1/subjects/{_segment(subject_id)}")

    def checkout(
        self,
        image: Path,
        *,
        amount_minor: int,
        currency: str,
        merchant_id: str,
        store_id: str,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """A signed pay-by-face call of this client's terminal."""
        fields = {
            "amount": str(amount_minor),
            "currency": currency,
            "merchant_id": merchant_id,
            "store_id": store_id,
            "idempotency_key": idempotency_key,
        }
        return self._signed("/v1/checkout", data=fields, files=[_file("image", image)])

    def step_up(
        self,
        authorization_id: str,
        *,
        image: Path | None = None,
        phone_digits: str | None = None,
        pin: str | None = None,
    ) -> dict[str, Any]:
        """Finish a checkout that asked for a step-up (the image is sent again)."""
        fields = {k: v for k, v in (("phone_digits", phone_digits), ("pin", pin)) if v}
        files = [_file("image", image)] if image is not None else None
        path = f"/v1/checkout/{_segment(authorization_id)}/step-up"
        return self._signed(path, data=fields, files=files)

    def _signed(self, path: str, **kwargs: Any) -> dict[str, Any]:
        if self._device is None:
            raise ClientError("a checkout call is signed: give the terminal's device id and secret")
        request = self._http.build_request("POST", path, **kwargs)
        body = request.read()  # the exact bytes that are signed and sent
        request.headers.update(
            signed_headers(
                device_id=self._device.id,
                secret=self._device.secret,
                method="POST",
                path=request.url.raw_path.decode("ascii"),
                body=body,
            )
        )
        return self._send(request)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._send(self._http.build_request(method, path, **kwargs))

    def _send(self, request: httpx.Request) -> dict[str, Any]:
        request_id = uuid.uuid4().hex
        request.headers[REQUEST_ID_HEADER] = request_id
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            failure, reason = _transport_failure(exc)
            call = f"{request.method} {request.url.path}"
            raise ServerUnavailable(self.server, call, failure, reason, request_id) from exc
        body = _json_body(response)
        if response.is_error or body is None:
            raise ApiError(
                response.status_code,
                body if body is not None else _not_a_problem(response),
                call=f"{request.method} {request.url}",
                request_id=response.headers.get(REQUEST_ID_HEADER, request_id),
                retry_after_s=_retry_after(response, body),
            )
        return body


def _file(field_name: str, path: Path) -> tuple[str, tuple[str, bytes, str]]:
    return (field_name, (path.name, path.read_bytes(), "application/octet-stream"))


def _segment(value: str) -> str:
    """``value`` as one path segment: a slash or ``..`` in an id cannot reach another route."""
    if value in {"", ".", ".."}:
        raise ClientError(f"not an id: {value!r}")
    return quote(value, safe="")


def _transport_failure(exc: httpx.TransportError) -> tuple[Failure, str]:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", reason
    if isinstance(exc, httpx.ConnectError):
        return "refused", reason
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return "dropped", reason
    return "network", reason


def _json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The answer's JSON object; ``{}`` for an empty body; None when it is not JSON."""
    if not response.content:
        return {}
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _not_a_problem(response: httpx.Response) -> dict[str, Any]:
    """A problem that describes an answer facekey would not give (a proxy's HTML page, ...)."""
    kind = response.headers.get("content-type", "no content type")
    text = response.text[:120] if response.content else ""
    return {
        "title": response.reason_phrase or "Unexpected answer",
        "detail": f"not a facekey answer ({kind}): {text!r}",
    }


def _retry_after(response: httpx.Response, body: dict[str, Any] | None) -> float | None:
    """Seconds the server asks to wait (``Retry-After``: seconds or an HTTP date)."""
    header = response.headers.get("Retry-After", "").strip()
    if header.isascii() and header.isdigit():
        return float(header)
    if header:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    value = (body or {}).get("retry_after")
    return float(value) if isinstance(value, int | float) and value >= 0 else None


def _one_line(text: str) -> str:
    return " ".join(text.split())
