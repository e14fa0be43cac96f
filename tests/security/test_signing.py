"""HMAC-signed terminal requests: sign, parse headers, verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from facekey.errors import (
    DeviceDisabled,
    ReplayedRequest,
    RequestError,
    SignatureError,
    SignatureInvalid,
    SignatureMissing,
    StaleRequest,
    UnknownDevice,
)
from facekey.security.signing import (
    HEADER_DEVICE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SignedRequest,
    canonical_string,
    decode_secret,
    encode_secret,
    new_device_secret,
    new_nonce,
    parse_signature_headers,
    sign,
    signed_headers,
    verify,
)

SECRET = bytes(range(32))
NOW = 1_700_000_000.0
NONCE = "abcdefghijklmnop-_0123456789"
DEVICE = "3f6c1f9e-5b7a-4c1e-9a57-2b1d0c9e8f70"
METHOD = "POST"
PATH = "/v1/checkout?dry_run=1"
BODY = b'{"amount_minor": 1250, "currency": "EUR"}'


def _headers(**overrides: Any) -> dict[str, str]:
    args: dict[str, Any] = {
        "device_id": DEVICE,
        "secret": SECRET,
        "method": METHOD,
        "path": PATH,
        "body": BODY,
        "now": NOW,
        "nonce": NONCE,
    }
    return signed_headers(**(args | overrides))


def _verify(headers: dict[str, str], **overrides: Any) -> None:
    args: dict[str, Any] = {
        "secret": SECRET,
        "method": METHOD,
        "path": PATH,
        "body": BODY,
        "now": NOW,
    }
    verify(parse_signature_headers(headers), **(args | overrides))


def test_error_tree() -> None:
    for cls in (
        SignatureMissing,
        SignatureInvalid,
        StaleRequest,
        ReplayedRequest,
        DeviceDisabled,
        UnknownDevice,
    ):
        assert issubclass(cls, SignatureError)
    assert issubclass(SignatureError, RequestError)


def test_round_trip() -> None:
    headers = _headers()
    assert set(headers) == {HEADER_DEVICE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE}
    assert headers[HEADER_TIMESTAMP] == "1700000000"
    parsed = parse_signature_headers(headers)
    assert parsed == SignedRequest(DEVICE, 1_700_000_000, NONCE, headers[HEADER_SIGNATURE])
    _verify(headers)


def test_signature_is_hmac_of_canonical_string() -> None:
    canonical = canonical_string(
        method="post", path=PATH, body=BODY, timestamp=1_700_000_000, nonce=NONCE
    )
    assert canonical == "\n".join(
        ["POST", PATH, hashlib.sha256(BODY).hexdigest(), "1700000000", NONCE]
    )
    digest = hmac.new(SECRET, canonical.encode(), hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert (
        sign(
            secret=SECRET, method="POST", path=PATH, body=BODY, timestamp=1_700_000_000, nonce=NONCE
        )
        == expected
    )
    assert len(expected) == 43


def test_empty_body_and_lower_case_method() -> None:
    headers = _headers(method="get", path="/v1/health", body=b"")
    _verify(headers, method="GET", path="/v1/health", body=b"")


def test_default_now_and_nonce() -> None:
    first = signed_headers(device_id=DEVICE, secret=SECRET, method=METHOD, path=PATH, body=BODY)
    second = signed_headers(device_id=DEVICE, secret=SECRET, method=METHOD, path=PATH, body=BODY)
    assert first[HEADER_NONCE] != second[HEADER_NONCE]
    now = float(first[HEADER_TIMESTAMP])
    _verify(first, now=now)


@pytest.mark.parametrize(
    "tamper",
    [
        {"method": "PUT"},
        {"path": "/v1/checkout"},
        {"path": "/v1/checkout?dry_run=0"},
        {"body": BODY + b" "},
        {"body": b""},
        {"secret": bytes(32)},
        {"secret": SECRET[:-1]},
    ],
    ids=["method", "path", "query", "body", "empty-body", "secret", "short-secret"],
)
def test_tampered_request_is_invalid(tamper: dict[str, Any]) -> None:
    with pytest.raises(SignatureInvalid):
        _verify(_headers(), **tamper)


def _flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_TIMESTAMP, "1700000001"),
        (HEADER_TIMESTAMP, "1699999999"),
        (HEADER_NONCE, _flip(NONCE, 0)),
        (HEADER_NONCE, NONCE + "x"),
    ],
    ids=["timestamp+1", "timestamp-1", "nonce", "nonce-longer"],
)
def test_tampered_header_is_invalid(header: str, value: str) -> None:
    headers = _headers() | {header: value}
    with pytest.raises(SignatureInvalid):
        _verify(headers)


@pytest.mark.parametrize("index", [0, 21, 42])
def test_tampered_signature_is_invalid(index: int) -> None:
    headers = _headers()
    headers[HEADER_SIGNATURE] = _flip(headers[HEADER_SIGNATURE], index)
    with pytest.raises(SignatureInvalid):
        _verify(headers)


def test_signature_of_another_device_secret_is_invalid() -> None:
    other = _headers(secret=new_device_secret())
    with pytest.raises(SignatureInvalid):
        _verify(other)


@pytest.mark.parametrize("skew", [61.0, -61.0, 3600.0, -1e6])
def test_stale_request(skew: float) -> None:
    headers = _headers(now=NOW + skew)
    with pytest.raises(StaleRequest):
        _verify(headers)


@pytest.mark.parametrize("skew", [59.0, -59.0, 60.0, -60.0, 0.0])
def test_within_window(skew: float) -> None:
    _verify(_headers(now=NOW + skew))


def test_window_is_configurable() -> None:
    headers = _headers(now=NOW - 200)
    _verify(headers, window_s=300)
    with pytest.raises(StaleRequest):
        _verify(headers, window_s=100)


def test_fractional_now_is_floored_into_the_timestamp() -> None:
    headers = _headers(now=NOW + 0.999)
    assert headers[HEADER_TIMESTAMP] == "1700000000"
    _verify(headers, now=NOW + 0.999)


def test_stale_request_with_bad_signature_is_invalid() -> None:
    # The signature is checked first: an unauthenticated caller learns nothing about the clock.
    headers = _headers(now=NOW - 3600)
    headers[HEADER_SIGNATURE] = _flip(headers[HEADER_SIGNATURE], 5)
    with pytest.raises(SignatureInvalid):
        _verify(headers)


@pytest.mark.parametrize(
    "header", [HEADER_DEVICE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE]
)
def test_missing_header(header: str) -> None:
    headers = _headers()
    del headers[header]
    with pytest.raises(SignatureMissing, match=header):
        parse_signature_headers(headers)


@pytest.mark.parametrize(
    "header", [HEADER_DEVICE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE]
)
def test_empty_header(header: str) -> None:
    with pytest.raises(SignatureMissing, match="missing"):
        parse_signature_headers(_headers() | {header: "  "})


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_TIMESTAMP, "1700000000.5"),
        (HEADER_TIMESTAMP, "-1700000000"),
        (HEADER_TIMESTAMP, "soon"),
        (HEADER_TIMESTAMP, "١٧٠٠٠٠٠٠٠٠"),  # non-ASCII digits
        (HEADER_NONCE, "short"),
        (HEADER_NONCE, "x" * 65),
        (HEADER_NONCE, "abcdefghijklmnop+"),
        (HEADER_NONCE, "abcdefgh ijklmnop"),
        (HEADER_SIGNATURE, "not-a-signature"),
        (HEADER_SIGNATURE, "A" * 44),
        (HEADER_SIGNATURE, "+" * 43),
        (HEADER_DEVICE, "device id with spaces"),
        (HEADER_DEVICE, "d" * 129),
    ],
)
def test_malformed_header(header: str, value: str) -> None:
    with pytest.raises(SignatureMissing, match="malformed"):
        parse_signature_headers(_headers() | {header: value})


def test_header_names_are_case_insensitive() -> None:
    lower = {name.lower(): value for name, value in _headers().items()}
    upper = {name.upper(): value for name, value in _headers().items()}
    assert parse_signature_headers(lower) == parse_signature_headers(_headers())
    _verify(lower)
    _verify(upper)


def test_header_given_twice_in_different_case_is_malformed() -> None:
    headers = _headers() | {HEADER_NONCE.lower(): new_nonce()}
    with pytest.raises(SignatureMissing, match="more than once"):
        parse_signature_headers(headers)


def test_values_are_stripped_and_padding_accepted() -> None:
    headers = _headers()
    padded = headers | {
        HEADER_SIGNATURE: f" {headers[HEADER_SIGNATURE]}= ",
        HEADER_TIMESTAMP: f"{headers[HEADER_TIMESTAMP]} ",
    }
    _verify(padded)


def test_unrelated_headers_are_ignored() -> None:
    _verify(_headers() | {"Content-Type": "application/json", "Authorization": "Bearer x"})


def test_error_messages_hold_no_secret_or_expected_signature() -> None:
    headers = _headers()
    expected = headers[HEADER_SIGNATURE]
    headers[HEADER_SIGNATURE] = _flip(expected, 0)
    with pytest.raises(SignatureInvalid) as caught:
        _verify(headers)
    assert expected not in str(caught.value)
    assert encode_secret(SECRET) not in str(caught.value)


def test_verify_rejects_a_request_that_cannot_be_canonical() -> None:
    request = SignedRequest(DEVICE, 1_700_000_000, NONCE, "A" * 43)
    with pytest.raises(SignatureInvalid):
        verify(request, secret=SECRET, method=METHOD, path="no-slash", body=BODY, now=NOW)


@pytest.mark.parametrize(
    "bad",
    [
        {"method": "PO ST"},
        {"path": "relative"},
        {"path": "/with space"},
        {"path": "/line\nbreak"},
        {"nonce": "short"},
        {"secret": b""},
        {"device_id": ""},
        {"now": -5.0},
    ],
)
def test_sign_rejects_inputs_it_cannot_sign(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _headers(**bad)


def test_device_secret() -> None:
    secrets = {new_device_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(len(secret) == 32 for secret in secrets)


def test_secret_text_round_trip() -> None:
    secret = new_device_secret()
    text = encode_secret(secret)
    assert len(text) == 43
    assert "=" not in text
    assert decode_secret(text) == secret
    assert decode_secret(f" {text}= ") == secret


@pytest.mark.parametrize(
    "text", ["", "not base64!", encode_secret(bytes(16)), encode_secret(bytes(33)), "A"]
)
def test_decode_secret_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError):
        decode_secret(text)


def test_nonce_form() -> None:
    nonce = new_nonce()
    assert 16 <= len(nonce) <= 64
    parse_signature_headers(_headers(nonce=nonce))
