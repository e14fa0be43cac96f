"""A small HTTP client of the facekey API, for scripts and the CLI (bytes in, JSON out)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from facekey.errors import FacekeyError


class ApiError(FacekeyError):
    """The server answered with a problem; ``status`` and ``problem`` say which."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title') or problem}")
        self.status = status
        self.problem = problem


class FacekeyClient:
    """Calls one facekey server with one API key."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 60.0) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
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
        files = [("images", (p.name, p.read_bytes(), "application/octet-stream")) for p in images]
        return self._call("POST", "/v1/subjects", data=fields, files=files)

    def identify(self, image: Path, *, purpose: str | None = None) -> dict[str, Any]:
        """1:N search with one image file."""
        fields: dict[str, Any] = {"purpose": purpose} if purpose else {}
        files = [("image", (image.name, image.read_bytes(), "application/octet-stream"))]
        return self._call("POST", "/v1/identify", data=fields, files=files)

    def erase(self, subject_id: str) -> dict[str, Any]:
        """Erase one subject."""
        return self._call("DELETE", f"/v1/subjects/{subject_id}")

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, path, **kwargs)
        body: dict[str, Any] = response.json() if response.content else {}
        if response.is_error:
            raise ApiError(response.status_code, body)
        return body
