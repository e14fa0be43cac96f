"""A request-body size limit applied before any parsing (uploads are streamed and counted)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facekey.service.problems import PROBLEM_JSON, problem_body, problem_json
from facekey.service.requests import request_id_in


class BodyTooLarge(Exception):
    """Raised inside the app when the streamed body passes the limit."""


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        state = {"received": 0, "too_large": False, "answered": False}

        async def counted() -> Message:
            message = await receive()
            state["received"] += len(message.get("body", b""))
            if state["received"] > self.max_bytes:
                state["too_large"] = True
                raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Whatever the app makes of the interrupted body, the caller gets a 413.
            if state["too_large"]:
                if not state["answered"]:
                    state["answered"] = True
                    await self._refuse(scope, send)
                return
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not state["too_large"]:  # only the interrupted body's consequences are ours
                raise
        if state["too_large"] and not state["answered"]:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        problem = problem_body(
            413,
            "request-too-large",
            "Request too large",
            f"the request body is larger than {self.max_bytes} bytes",
            request_id_in(scope),
        )
        body = json.dumps(problem_json(problem)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
