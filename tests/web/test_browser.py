"""The pages in a real Chromium with a fake camera playing real frames: a person enrols by
webcam, is identified through the API, signs in to the portal with their face, withdraws,
excludes and erases, and the API no longer finds them; a still photo fails the check; a
refused or missing camera is said in words; the console shows real data."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import Network, Terminal, new_terminal
from browser import (
    SKIP_ENV,
    Watched,
    chromium_missing,
    launch,
    serve,
    write_y4m,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from sqlalchemy import select
from web_helpers import LIVENESS, TURN_THEN_LOOK_UP, WebNetwork

from facekey.flows.auth import Principal
from facekey.flows.platform import Platform
from facekey.flows.web_access import issue_enrol_link
from facekey.security.api_keys import Scope, parse_token
from facekey.service.app import create_app
from facekey.store.tables import Subject

PHONE = "+44 20 7946 0123"
#: Seconds the fake camera holds each frame of the real sequence: she starts turned to her
#: left, turns to the camera (turn_right) and looks up, then stays (the page's check starts
#: when the camera opens, and takes about six seconds).
TURN_HOLDS = (1.5, 0.6, 0.6, 1.0, 0.6, 9.0)
CHECK_TIMEOUT_MS = 90_000

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"browser tests skipped: {SKIP_ENV}=1")
    missing = chromium_missing()
    if missing is not None:
        pytest.fail(missing, pytrace=False)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def base_url(web_platform: Platform) -> Iterator[str]:
    with serve(create_app(web_platform.settings, platform=web_platform)) as url:
        yield url


@pytest.fixture(scope="module")
def turning_camera(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory) -> Browser:
    video = write_y4m(TURN_THEN_LOOK_UP, TURN_HOLDS, tmp_path_factory.mktemp("y4m") / "turn.y4m")
    browser = launch(playwright, video)
    yield browser
    browser.close()


def _context(browser: Browser, base_url: str, *, camera: bool = True) -> BrowserContext:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    if camera:
        context.grant_permissions(["camera"], origin=base_url)
    return context


def _enrol_link(platform: Platform, network: WebNetwork) -> str:
    admin = Principal(parse_token(network.keys["admin"]).key_id, network.id, Scope.ADMIN)
    return f"/enrol/start/{issue_enrol_link(platform, admin, reusable=False)}"


def _identify(base_url: str, network: WebNetwork, image: Path) -> str | None:
    answer = httpx.post(
        f"{base_url}/v1/identify",
        headers=network.auth("terminal"),
        files={"image": (image.name, image.read_bytes(), "image/jpeg")},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    match: str | None = answer.json()["match"]
    return match


def _start_check(watched: Watched) -> None:
    watched.page.get_by_role("button", name="Start the camera check").click()


def _camera_check_from_a_link(page: Page, platform: Platform, network: WebNetwork) -> Watched:
    """Open a new enrolment link, choose a PIN, and start the camera check."""
    watched = Watched(page)
    page.goto(_enrol_link(platform, network))
    page.get_by_role("button", name="Begin").click()
    page.get_by_label("PIN (4 to 8 digits)").fill("482915")
    page.get_by_role("button", name="Continue to the camera check").click()
    _start_check(watched)
    return watched


# ---------------------------------------------------------------------- the console


def _console(page: Page, watched: Watched, network: WebNetwork) -> str:
    """Sign in, check every console page, and create an enrolment link."""
    page.goto("/admin/login")
    watched.check("admin-login")
    page.get_by_label("Admin API key").fill(network.keys["admin"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin")
    for path, name in (
        ("/admin", "admin-network"),
        ("/admin/totals", "admin-totals"),
        ("/admin/audit", "admin-audit"),
        ("/admin/risk", "admin-risk"),
        ("/admin/engine", "admin-engine"),
    ):
        page.goto(path)
        watched.check(name)
    assert page.locator("img.plot").evaluate("img => img.naturalWidth") > 0  # the DET curve
    page.goto("/admin/access")
    watched.check("admin-access")
    page.get_by_role("button", name="Create the link").click()
    return page.locator("#issued-link").inner_text().strip()


def _enrol(page: Page, watched: Watched, link: str) -> None:
    page.goto(link)
    watched.check("enrol-start")
    page.get_by_role("button", name="Begin").click()
    page.wait_for_url("**/enrol")
    watched.check("enrol-choices")
    page.get_by_label("Personalised offers").check()
    page.get_by_label("Phone number").fill(PHONE)
    page.get_by_role("button", name="Continue to the camera check").click()
    watched.check("enrol-camera")
    _start_check(watched)
    page.get_by_role("heading", name="3. Enrolled").wait_for(timeout=CHECK_TIMEOUT_MS)
    assert "You are enrolled" in page.locator("#done-message").inner_text()
    watched.check("enrol-done")


def _portal(page: Page, watched: Watched, network: WebNetwork, merchant: str) -> dict:
    page.goto(f"/me?network={network.name}")
    watched.check("me-sign-in")
    page.get_by_label("Last four digits of your phone number").fill(PHONE[-4:])
    _start_check(watched)
    page.get_by_role("heading", name=f"What {network.name} holds about you").wait_for(
        timeout=CHECK_TIMEOUT_MS
    )
    assert PHONE in page.content()
    watched.check("me-data")
    page.get_by_role("button", name="Withdraw: Personalised offers").click()
    assert "Consent withdrawn" in page.get_by_role("status").inner_text()
    page.get_by_role("button", name=f"Exclude {merchant}").click()
    assert "You will not pay by face there" in page.get_by_role("status").inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download all of this").click()
    held = json.loads(Path(download.value.path()).read_text())
    page.get_by_label("I understand that this cannot be undone").check()
    page.get_by_role("button", name="Erase everything").click()
    page.get_by_role("heading", name="Everything is erased").wait_for()
    watched.check("me-erased")
    with page.expect_download() as receipt:
        page.get_by_role("link", name="Download the receipt").click()
    return {"held": held, "receipt": json.loads(Path(receipt.value.path()).read_text())}


def _checkout(web_app: FastAPI, platform: Platform, network: WebNetwork) -> Terminal:
    """A real checkout at a terminal, so that the console's totals have something to show."""
    terminal = new_terminal(platform, Network(network.id, network.keys), merchant="Bakery")
    image = LIVENESS / "turn-then-look-up-0040.jpg"
    with TestClient(web_app) as client:
        answer = terminal.post(
            client,
            "/v1/checkout",
            terminal.sale("web-e2e-1"),
            [("image", (image.name, image.read_bytes(), "image/jpeg"))],
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] in ("approved", "step_up"), answer.text
    return terminal


def test_enrol_by_webcam_identify_then_erase_in_the_portal(
    turning_camera: Browser,
    base_url: str,
    web_app: FastAPI,
    web_platform: Platform,
    network: WebNetwork,
    challenges: list[str],
) -> None:
    operator = _context(turning_camera, base_url, camera=False).new_page()
    link = _console(operator, Watched(operator), network)
    customer_context = _context(turning_camera, base_url)
    customer = customer_context.new_page()
    watched = Watched(customer)
    _enrol(customer, watched, link.replace(base_url, ""))

    with web_platform.database.read_session() as session:
        (subject_id,) = session.scalars(select(Subject.id).where(Subject.network_id == network.id))
    assert _identify(base_url, network, LIVENESS / "turn-then-look-up-0040.jpg") == subject_id
    _checkout(web_app, web_platform, network)
    operator.goto("/admin/totals")
    assert "Bakery" in operator.locator("table").inner_text()

    # Nothing of the person is kept in the browser: no storage, only the session's cookie.
    assert customer.evaluate("localStorage.length + sessionStorage.length") == 0
    cookies = customer_context.cookies()
    assert all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies), cookies
    done = _portal(customer, watched, network, "Bakery")
    assert done["held"]["subject_id"] == subject_id and done["held"]["phone"] == PHONE
    assert done["receipt"]["templates_erased"] >= 1
    assert _identify(base_url, network, LIVENESS / "turn-then-look-up-0040.jpg") is None
    gone = httpx.get(f"{base_url}/v1/subjects/{subject_id}/export", headers=network.auth("privacy"))
    assert gone.status_code == 404
    operator.goto("/admin/audit")
    assert "subject.erase" in operator.content()
    customer_context.close()


def test_a_still_photo_is_refused(
    playwright: Playwright,
    tmp_path: Path,
    base_url: str,
    web_platform: Platform,
    network: WebNetwork,
    challenges: list[str],
) -> None:
    still = write_y4m([LIVENESS / "pad-image_F1.jpg"], [12.0], tmp_path / "still.y4m")
    browser = launch(playwright, still)
    try:
        page = _context(browser, base_url).new_page()
        watched = _camera_check_from_a_link(page, web_platform, network)
        error = page.locator("#camera-error")
        error.filter(has_text="did not pass").wait_for(timeout=CHECK_TIMEOUT_MS)
        watched.check("enrol-refused")
    finally:
        browser.close()
    with web_platform.database.read_session() as session:
        assert (
            list(session.scalars(select(Subject.id).where(Subject.network_id == network.id))) == []
        )


@pytest.mark.parametrize(
    ("camera", "words"),
    [("refused", "Camera access was refused"), ("missing", "No camera was found")],
)
def test_a_refused_or_missing_camera_is_said_in_words(
    playwright: Playwright,
    turning_camera: Browser,
    base_url: str,
    web_platform: Platform,
    network: WebNetwork,
    camera: str,
    words: str,
) -> None:
    browser = turning_camera if camera == "refused" else launch(playwright, None)
    try:
        page = _context(browser, base_url, camera=camera == "missing").new_page()
        watched = _camera_check_from_a_link(page, web_platform, network)
        page.locator("#camera-error").filter(has_text=words).wait_for(timeout=30_000)
        assert watched.errors == []
    finally:
        if browser is not turning_camera:
            browser.close()
