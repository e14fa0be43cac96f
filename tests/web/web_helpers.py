"""Helpers of the pages' tests: an operator signed in, links and codes, camera checks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

LIVENESS = Path(__file__).parents[1] / "fixtures" / "liveness"
#: A real sequence: the subject turns to her right (towards the camera), then looks up.
TURN_THEN_LOOK_UP = sorted(LIVENESS.glob("turn-then-look-up-*.jpg"))
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = _CSRF.search(html)
    assert found, html
    return found.group(1)


@dataclass(frozen=True)
class WebNetwork:
    id: str
    name: str
    keys: dict[str, str]

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


def sign_in_operator(client: TestClient, network: WebNetwork) -> str:
    """Sign the client in to the console; the console's CSRF token."""
    csrf = csrf_of(client.get("/admin/login").text)
    answer = client.post(
        "/admin/login",
        data={"api_key": network.keys["admin"], "csrf": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/admin/access").text)


def issue(client: TestClient, network: WebNetwork, path: str, **fields: str) -> str:
    """A link or code the console hands out (signing in first)."""
    csrf = sign_in_operator(client, network)
    page = client.post(f"/admin/access/{path}", data={"csrf": csrf, **fields})
    found = re.search(r'id="issued-(?:link|code)">([^<]+)<', page.text)
    assert found, page.text
    return found.group(1)


def open_enrolment(client: TestClient, link: str) -> str:
    """Follow an enrolment link and begin; the enrolment page's CSRF token."""
    path = urlsplit(link).path
    landing = client.get(path)
    code = path.rsplit("/", 1)[1]
    page = client.post("/enrol/start", data={"code": code, "csrf": csrf_of(landing.text)})
    assert page.status_code == 200 and "Camera check" in page.text, page.text
    return csrf_of(page.text)


def camera_check(
    client: TestClient, area: str, csrf: str, frames: list[Path] = TURN_THEN_LOOK_UP
) -> Any:
    """A page's camera check with these frames, as the page's script sends them."""
    headers = {"X-CSRF-Token": csrf}
    opened = client.post(f"/{area}/check/start", headers=headers)
    assert opened.status_code == 200, opened.text
    files = [("frames", (p.name, p.read_bytes(), "image/jpeg")) for p in frames]
    times = json.dumps([1000 + 200 * i for i in range(len(frames))])
    return client.post(
        f"/{area}/check/frames", headers=headers, data={"timestamps": times}, files=files
    )


def enrol_through_page(
    client: TestClient, network: WebNetwork, phone: str = "+44 20 7946 0123"
) -> Any:
    """A person enrols through the page's calls (what its script does), from a new link."""
    csrf = open_enrolment(client, issue(client, network, "enrol-link", kind="person"))
    checked = camera_check(client, "enrol", csrf)
    assert checked.json() == {"live": True, "message": None}, checked.text
    form = {"terms_version": "2026-12", "purposes": ["payment", "personalization"]}
    return client.post(
        "/enrol/complete", headers={"X-CSRF-Token": csrf}, data=form | {"phone": phone}
    )
