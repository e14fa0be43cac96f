"""HMAC-signed terminal requests.

Every call of a checkout terminal carries four headers::

    X-Facekey-Device     the device id
    X-Facekey-Timestamp  integer Unix seconds when the request was signed
    X-Facekey-Nonce      16-64 url-safe characters (A-Z a-z 0-9 _ -), never reused by a device
    X-Facekey-Signature  base64url(HMAC-SHA256(device secret, canonical string)), no padding

The canonical string joins five lines with ``\\n`` (no trailing newline)::

    METHOD               upper case, e.g. POST
    PATH                 the request target as sent: path plus ``?query`` when there is one
    SHA256_HEX(body)     lower-case hex digest of the raw body bytes (of b"" when empty)
    TIMESTAMP            the header value
    NONCE                the header value

The signature covers the body, so a terminal must send exactly the bytes it signed. The
server verifies with :func:`verify` (signature first, in constant time, then the time window)
and then remembers the nonce per device: a nonce seen before is a replay. Nonce storage lives
in the database, not here, and must keep nonces at least as long as the time window.

Device secrets are 32 random bytes (:func:`new_device_secret`), shown once to the operator as
base64url text (:func:`encode_secret`) and kept by the server wrapped by its key-encryption key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from facekey.errors import SignatureInvalid, SignatureMissing, StaleRequest

__all__ = [
    "DEFAULT_WINDOW_S",
    "HEADER_DEVICE",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "SECRET_BYTES",
    "SignedRequest",
    "body_digest",
    "canonical_string",
    "decode_secret",
    "encode_secret",
    "new_device_secret",
    "new_nonce",
    "parse_signature_headers",
    "sign",
    "signed_headers",
    "verify",
]

HEADER_DEVICE = "X-Facekey-Device"
HEADER_TIMESTAMP = "X-Facekey-Timestamp"
HEADER_NONCE = "X-Facekey-Nonce"
HEADER_SIGNATURE = "X-Facekey-Signature"

SECRET_BYTES = 32
"""Length of a device secret."""

DEFAULT_WINDOW_S = 60
"""How far (seconds, either way) a request timestamp may be from the server clock."""

_NONCE_BYTES = 24  # 32 url-safe characters
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_DEVICE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}=?")  # 32 bytes of base64url
_METHOD = re.compile(r"[A-Z]{1,16}")
_PATH = re.compile(r"/[\x21-\x7e]*")  # printable ASCII, no spaces or line breaks


@dataclass(frozen=True)
class SignedRequest:
    """The signature headers of one request, checked for form but not yet verified."""

    device_id: str
    timestamp: int
    nonce: str
    signature: str


# --------------------------------------------------------------------------- secrets


def new_device_secret() -> bytes:
    """Return a new random device secret of :data:`SECRET_BYTES` bytes."""
    return secrets.token_bytes(SECRET_BYTES)


def encode_secret(secret: bytes) -> str:
    """Return ``secret`` as unpadded base64url text, the form shown once to the operator."""
    return base64.urlsafe_b64encode(secret).rstrip(b"=").decode("ascii")


def decode_secret(text: str) -> bytes:
    """Parse :func:`encode_secret` output (padding optional); raise ValueError if malformed."""
    stripped = text.strip().rstrip("=")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", stripped):
        raise ValueError("a device secret is base64url text")
    try:
        secret = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a device secret is base64url text") from exc
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a device secret has {SECRET_BYTES} bytes, this one {len(secret)}")
    return secret


def new_nonce() -> str:
    """Return a new random nonce (32 url-safe characters)."""
    return secrets.token_urlsafe(_NONCE_BYTES)


# --------------------------------------------------------------------------- signing


def body_digest(body: bytes) -> str:
    """Return the lower-case hex sha256 of the request body."""
    return hashlib.sha256(body).hexdigest()


def canonical_string(*, method: str, path: str, body: bytes, timestamp: int, nonce: str) -> str:
    """Return the string that is signed; raise ValueError for inputs that cannot be signed."""
    upper = method.upper()
    if not _METHOD.fullmatch(upper):
        raise ValueError(f"not an HTTP method: {method!r}")
    if not _PATH.fullmatch(path):
        raise ValueError("the path must start with / and hold printable ASCII without spaces")
    if timestamp < 0:
        raise ValueError(f"the timestamp must not be negative, got {timestamp}")
    if not _NONCE.fullmatch(nonce):
        raise ValueError("a nonce is 16-64 url-safe characters")
    return "\n".join((upper, path, body_digest(body), str(timestamp), nonce))


def sign(*, secret: bytes, method: str, path: str, body: bytes, timestamp: int, nonce: str) -> str:
    """Return the base64url (unpadded) HMAC-SHA256 signature of the request."""
    if not secret:
        raise ValueError("an empty secret cannot sign")
    message = canonical_string(
        method=method, path=path, body=body, timestamp=timestamp, nonce=nonce
    )
    digest = hmac.new(secret, message.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def signed_headers(
    *,
    device_id: str,
    secret: bytes,
    method: str,
    path: str,
    body: bytes,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Return the four signature headers for a request (for terminals and tests).

    ``now`` defaults to the current time and ``nonce`` to a new random one.
    """
    if not _DEVICE_ID.fullmatch(device_id):
        raise ValueError(f"not a device id: {device_id!r}")
    timestamp = int(time.time() if now is None else now)
    nonce = new_nonce() if nonce is None else nonce
    signature = sign(
        secret=secret, method=method, path=path, body=body, timestamp=timestamp, nonce=nonce
    )
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature,
    }


# --------------------------------------------------------------------------- verifying


def parse_signature_headers(headers: Mapping[str, str]) -> SignedRequest:
    """Read the four signature headers; their names may be in any case.

    Raise SignatureMissing when one is missing, given twice (in different case) or malformed.
    """
    lowered = _lowercase(headers)
    device_id = _header(lowered, HEADER_DEVICE, _DEVICE_ID, "a device id")
    timestamp = _header(lowered, HEADER_TIMESTAMP, _TIMESTAMP, "integer Unix seconds")
    nonce = _header(lowered, HEADER_NONCE, _NONCE, "16-64 url-safe characters")
    signature = _header(lowered, HEADER_SIGNATURE, _SIGNATURE, "base64url HMAC-SHA256")
    return SignedRequest(device_id, int(timestamp), nonce, signature.rstrip("="))


def _lowercase(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the headers keyed by lower-case name; a name given twice is malformed."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in lowered:
            raise SignatureMissing(f"header {name} is given more than once")
        lowered[key] = value
    return lowered


def _header(lowered: Mapping[str, str], name: str, pattern: re.Pattern[str], form: str) -> str:
    """Return one header's stripped value; raise SignatureMissing if absent or malformed."""
    value = lowered.get(name.lower())
    if value is None or not value.strip():
        raise SignatureMissing(f"header {name} is missing; terminal requests must be signed")
    value = value.strip()
    if not pattern.fullmatch(value):
        raise SignatureMissing(f"header {name} is malformed; expected {form}")
    return value


def verify(
    request: SignedRequest,
    *,
    secret: bytes,
    method: str,
    path: str,
    body: bytes,
    now: float,
    window_s: int = DEFAULT_WINDOW_S,
) -> None:
    """Check the signature (constant time), then the time window; return None if both hold.

    Raise SignatureInvalid when the signature does not match method, path, body, timestamp and
    nonce under ``secret``, and StaleRequest when ``|now - timestamp| > window_s``. The nonce is
    not checked against earlier requests here: the caller does that in the database.
    """
    try:
        expected = sign(
            secret=secret,
            method=method,
            path=path,
            body=body,
            timestamp=request.timestamp,
            nonce=request.nonce,
        )
    except ValueError as exc:
        raise SignatureInvalid(f"the request cannot be verified: {exc}") from exc
    if not hmac.compare_digest(expected.encode("ascii"), request.signature.encode("utf-8")):
        raise SignatureInvalid("the signature does not match this request and device")
    skew = now - request.timestamp
    if abs(skew) > window_s:
        raise StaleRequest(
            f"the request timestamp is {abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} "
            f"the server clock; the window is {window_s} s"
        )
