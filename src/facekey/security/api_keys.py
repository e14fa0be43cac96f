"""Scoped API keys.

A token reads ``fk_<scope>_<key id>_<secret>``. The key id (12 url-safe characters) is public and
finds the stored row, which also holds the network the key is bound to; only the sha256 of the
secret is stored. The token is shown to the operator once, at issue.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from facekey.errors import InvalidApiKey

__all__ = [
    "IssuedKey",
    "ParsedToken",
    "Scope",
    "hash_secret",
    "issue_key",
    "parse_token",
    "verify_secret",
]

_KEY_ID_BYTES = 9  # 12 url-safe characters
_SECRET_BYTES = 32  # 43 url-safe characters


class Scope(StrEnum):
    """What an API key may do; every key is bound to one network."""

    ADMIN = "admin"
    ENROL = "enrol"
    TERMINAL = "terminal"
    PRIVACY = "privacy"


# The key id and secret may themselves hold "_", so the token is split by fixed lengths.
_SCOPES = "|".join(scope.value for scope in Scope)
_TOKEN = re.compile(
    rf"fk_(?P<scope>{_SCOPES})_(?P<key_id>[A-Za-z0-9_-]{{12}})_(?P<secret>[A-Za-z0-9_-]{{43}})"
)


@dataclass(frozen=True)
class IssuedKey:
    """A newly issued key: store ``key_id``, ``scope`` and ``secret_hash``; show ``token`` once."""

    key_id: str
    scope: Scope
    token: str = field(repr=False)

    @property
    def secret_hash(self) -> str:
        """The value to store for later :func:`verify_secret`."""
        return hash_secret(parse_token(self.token).secret)


class ParsedToken(NamedTuple):
    """The parts of a token; its repr leaves the secret out."""

    key_id: str
    scope: Scope
    secret: str

    def __repr__(self) -> str:
        return f"ParsedToken(key_id={self.key_id!r}, scope={self.scope!r}, secret='***')"


def issue_key(scope: Scope) -> IssuedKey:
    """Create a new random key of ``scope``."""
    key_id = secrets.token_urlsafe(_KEY_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return IssuedKey(key_id=key_id, scope=scope, token=f"fk_{scope}_{key_id}_{secret}")


def parse_token(token: str) -> ParsedToken:
    """Split a token into key id, scope and secret; raise InvalidApiKey if it is malformed."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        # Never echo the token: it may be a real secret with a typo.
        raise InvalidApiKey("malformed API key; expected fk_<scope>_<key id>_<secret>")
    return ParsedToken(match["key_id"], Scope(match["scope"]), match["secret"])


def hash_secret(secret: str) -> str:
    """Return the sha256 hex digest of ``secret``, the form in which it is stored."""
    # Secrets are 256 random bits, so brute force is hopeless whatever the hash speed: a slow
    # password hash (bcrypt, argon2) would add only latency to every request.
    return hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` matches ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())
