"""PINs for the checkout step-up: 4–8 digits, stored as salted scrypt hashes only.

A PIN has little entropy, so the hash is deliberately slow and the checkout locks a subject out
after a few consecutive failures (NIST SP 800-63B); the hash alone never lets a PIN through.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from facekey.errors import InvalidRequest

_PIN = re.compile(r"[0-9]{4,8}")
_N, _R, _P = 2**14, 8, 1


def check_pin_format(pin: str) -> str:
    """The PIN if it is 4 to 8 digits; else :class:`InvalidRequest`."""
    if not _PIN.fullmatch(pin):
        raise InvalidRequest("a PIN is 4 to 8 digits")
    return pin


def hash_pin(pin: str) -> str:
    """``scrypt$N$r$p$salt$digest`` (base64url)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(check_pin_format(pin).encode(), salt=salt, n=_N, r=_R, p=_P)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def verify_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` matches a hash made by :func:`hash_pin` (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or not _PIN.fullmatch(pin):
            return False
        actual = hashlib.scrypt(pin.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
