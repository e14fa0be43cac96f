"""The pages' protections: security headers, session cookies, CSRF checks, the client address.

Every response under the pages' prefixes carries a strict Content-Security-Policy (scripts,
styles and images from facekey only, no inline script, nothing framed), no referrer, and
``no-store`` caching (pages show personal data). Session cookies are HttpOnly,
SameSite=Strict, scoped to their area's path, and Secure unless the page is served over plain
HTTP on loopback (a development machine).
"""

from __future__ import annotations

from typing import Final

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facekey.errors import AuthenticationFailed
from facekey.flows.web_access import Kind, csrf_matches

#: Path prefixes served by the web pages.
PREFIXES: Final = ("/enrol", "/me", "/admin", "/static/")
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; media-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS: Final = (
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
)
#: The cookie of each kind of session, sent only to its own area.
COOKIES: Final[dict[Kind, tuple[str, str]]] = {
    "enrol": ("facekey_enrol", "/enrol"),
    "portal": ("facekey_me", "/me"),
    "operator": ("facekey_admin", "/admin"),
}
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "x-csrf-token"
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class SecurityHeadersMiddleware:
    """Add :data:`HEADERS` (and ``no-store`` to pages) to every response of the pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(PREFIXES):
            await self.app(scope, receive, send)
            return
        extra = list(HEADERS)
        if not path.startswith("/static/"):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def on_loopback(request: Request) -> bool:
    """Whether the page is served over plain HTTP to this machine (no TLS to require)."""
    return request.url.scheme == "http" and (request.url.hostname or "") in _LOOPBACK


def set_session_cookie(response: Response, request: Request, kind: Kind, token: str) -> None:
    name, path = COOKIES[kind]
    response.set_cookie(
        name,
        token,
        path=path,
        httponly=True,
        samesite="strict",
        secure=not on_loopback(request),
    )


def clear_session_cookie(response: Response, request: Request, kind: Kind) -> None:
    name, path = COOKIES[kind]
    response.delete_cookie(
        name, path=path, httponly=True, samesite="strict", secure=not on_loopback(request)
    )


def session_token(request: Request, kind: Kind) -> str | None:
    return request.cookies.get(COOKIES[kind][0])


def check_csrf(request: Request, kind: Kind, given: str | None) -> None:
    """Refuse a state-changing request whose form or header token is not the session's."""
    token = session_token(request, kind)
    if token is None or not csrf_matches(token, given or request.headers.get(CSRF_HEADER)):
        raise AuthenticationFailed(
            "this form has expired or did not come from this site: reload the page and try again"
        )


def client_of(request: Request) -> str:
    """The caller's address, as rate limits count it."""
    return request.client.host if request.client else "unknown"
