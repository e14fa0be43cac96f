"""A real socket in front of the real app, that can misbehave the way networks do.

:class:`Front` listens on a loopback port and answers each HTTP request by the next entry of
its script (then by ``forward``): ``forward`` passes the request to the app in-process;
``drop`` closes the connection without a word; ``cut`` starts an answer and closes the
connection halfway through it; ``hang`` keeps the connection open and silent; ``down`` closes
the connection and the listening socket, so that later calls are refused; an ``int`` answers
that status as a problem+json; ``"html"`` answers a proxy's 502 page. Every request is logged
as ``(method, path, action)``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
from collections.abc import Iterable
from typing import Any

from fastapi.testclient import TestClient

Action = str | int


class Front:
    """A loopback HTTP front for ``app`` (a TestClient), scripted per request."""

    def __init__(self, app: TestClient) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._script: list[Action] = []
        self._retry_after: str | None = None
        self.released = threading.Event()
        self.hanging = threading.Event()
        self.log: list[tuple[str, str, Action]] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.front = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.start()

    def script(self, actions: Iterable[Action], *, retry_after: str | None = None) -> None:
        """Answer the next requests by ``actions`` (a status answer with ``Retry-After``)."""
        with self._lock:
            self._script = list(actions)
            self._retry_after = retry_after
            self.log.clear()

    def close(self) -> None:
        self.released.set()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def go_down(self) -> None:
        """Stop listening: from now on a connection is refused."""
        self._server.shutdown()
        self._server.server_close()

    def next_action(self, method: str, path: str) -> Action:
        with self._lock:
            action = self._script.pop(0) if self._script else "forward"
            self.log.append((method, path, action))
            return action

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        sent = {k: v for k, v in headers.items() if k not in _HOP | {"host"}}
        with self._lock:  # one call at a time through the in-process app
            response = self._app.request(method, path, headers=sent, content=body)
        return _answer(
            response.status_code,
            response.reason_phrase,
            response.content,
            {k: v for k, v in response.headers.items() if k.lower() not in _HOP},
        )

    def status_answer(self, status: int) -> bytes:
        problem = {"type": "about:blank", "title": "Busy", "status": status, "detail": "later"}
        headers = {"content-type": "application/problem+json"}
        if self._retry_after is not None:
            headers["retry-after"] = self._retry_after
        return _answer(status, "Busy", json.dumps(problem).encode(), headers)


_HOP = {"content-length", "connection", "transfer-encoding"}


def _answer(status: int, reason: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"content-length: {len(body)}", "connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    front: Front


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        front = self.server.front
        head = self._head()
        if head is None:
            return
        method, path, headers = head
        body = self.rfile.read(int(headers.get("content-length", "0")))
        action = front.next_action(method, path)
        self._act(front, action, method, path, headers, body)

    def _act(
        self,
        front: Front,
        action: Action,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        if isinstance(action, int):
            self.wfile.write(front.status_answer(action))
        elif action == "forward":
            self.wfile.write(front.forward(method, path, headers, body))
        elif action == "html":
            page = b"<html><body>502 Bad Gateway</body></html>"
            self.wfile.write(_answer(502, "Bad Gateway", page, {"content-type": "text/html"}))
        elif action == "cut":
            answer = front.forward(method, path, headers, body)
            self.wfile.write(answer[: len(answer) - 10])
        elif action == "hang":
            front.hanging.set()
            front.released.wait(60)
        elif action == "down":
            threading.Thread(target=front.go_down).start()
        # "drop" and "down" say nothing: the connection closes when handle() returns
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _head(self) -> tuple[str, str, dict[str, str]] | None:
        request_line = self.rfile.readline().decode("latin-1").strip()
        if not request_line:
            return None
        method, path, _ = request_line.split(" ", 2)
        headers: dict[str, Any] = {}
        while (line := self.rfile.readline().decode("latin-1").strip()) != "":
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        return method, path, headers
