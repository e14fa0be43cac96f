"""API keys: who is calling, for which network, with which scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from facekey.errors import AuthenticationFailed, InvalidApiKey, PermissionDenied
from facekey.flows.platform import Platform
from facekey.security.api_keys import Scope, parse_token, verify_secret
from facekey.store import tenants


@dataclass(frozen=True)
class Principal:
    """An authenticated API key."""

    key_id: str
    network_id: str
    scope: Scope

    def require(self, *scopes: Scope) -> None:
        """Raise :class:`PermissionDenied` unless the key has one of ``scopes`` (or admin)."""
        if self.scope is not Scope.ADMIN and self.scope not in scopes:
            allowed = ", ".join(s.value for s in scopes)
            raise PermissionDenied(f"a {self.scope.value} key cannot do this; it needs {allowed}")


def authenticate(platform: Platform, token: str | None) -> Principal:
    """The principal of a bearer token; :class:`AuthenticationFailed` otherwise."""
    if not token:
        raise AuthenticationFailed("send an API key as 'Authorization: Bearer <key>'")
    try:
        parsed = parse_token(token)
    except InvalidApiKey as exc:
        raise AuthenticationFailed(str(exc)) from exc
    with platform.database.read_session() as session:
        row = tenants.get_api_key(session, key_id=parsed.key_id)
        if (
            row is None
            or row.scope != parsed.scope
            or not verify_secret(parsed.secret, row.secret_hash)
        ):
            raise AuthenticationFailed("the API key is not valid")
        if row.revoked_at is not None:
            raise AuthenticationFailed("the API key has been revoked")
        if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
            raise AuthenticationFailed("the API key has expired")
        return Principal(row.key_id, row.network_id, Scope(row.scope))
