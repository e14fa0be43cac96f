"""Request ids: every request gets one, every answer and log line about it carries it."""

from __future__ import annotations

import re
import uuid
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER: Final = "x-request-id"
#: A caller's own id is kept when it is short and plain (it ends up in logs).
_ACCEPTED: Final = re.compile(r"[A-Za-z0-9._-]{8,64}")


class RequestIdMiddleware:
    """Give each HTTP request an id (the caller's ``X-Request-ID`` when it is plain, else a
    new one) in ``request.state.request_id`` and the ``X-Request-ID`` response header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(HEADER.encode(), b"").decode("latin-1")
        request_id = given if _ACCEPTED.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if all(name.lower() != HEADER.encode() for name, _ in headers):
                    headers.append((HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def request_id_in(scope: Scope) -> str | None:
    """The request's id from an ASGI scope (for middleware that answers by itself)."""
    value = scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None
