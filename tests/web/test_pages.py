"""The pages without a browser: protections, sign-ins, enrolment and the portal's actions."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from web_helpers import (
    LIVENESS,
    WebNetwork,
    camera_check,
    csrf_of,
    enrol_through_page,
    issue,
    open_enrolment,
    sign_in_operator,
)

from facekey import errors
from facekey.flows import console
from facekey.flows.auth import Principal
from facekey.flows.devices import add_device, add_merchant, add_store, disable_device
from facekey.flows.platform import Platform
from facekey.flows.tenancy import rotate_keys
from facekey.security.api_keys import Scope, parse_token
from facekey.store import fleet as fleet_store
from facekey.store import web as web_store
from facekey.store.tables import Subject
from facekey.web import install_web, pages
from facekey.web.security import CSP
from facekey.web.words import message_for

PAGES = ("/enrol", "/me", "/admin/login", "/enrol/start/anything")
STILL = [LIVENESS / "pad-image_F1.jpg"] * 6


def _subjects(platform: Platform, network: WebNetwork) -> list[str]:
    with platform.database.read_session() as session:
        stmt = select(Subject.id).where(
            Subject.network_id == network.id, Subject.status == "active"
        )
        return list(session.scalars(stmt))


# ---------------------------------------------------------------------- protections


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_a_strict_policy_and_safe_cookies(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    assert "unsafe" not in CSP and "script-src 'self'" in CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie


def test_cookies_are_secure_off_loopback(web_app: FastAPI) -> None:
    with TestClient(web_app, base_url="https://pay.example") as client:
        assert "Secure" in client.get("/me").headers["set-cookie"]


def test_no_inline_script_or_style_in_templates() -> None:
    from facekey.web.pages import TEMPLATES_DIR

    for template in TEMPLATES_DIR.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"\son[a-z]+=|\sstyle=|<style", text), template.name


def test_forms_and_calls_refuse_a_missing_or_wrong_csrf_token(
    client: TestClient, network: WebNetwork
) -> None:
    client.get("/admin/login")
    refused = client.post("/admin/login", data={"api_key": network.keys["admin"], "csrf": "x"})
    assert refused.status_code == 401 and "did not come from this site" in refused.text
    csrf = open_enrolment(client, issue(client, network, "enrol-link", kind="person"))
    call = client.post("/enrol/check/start")
    assert call.status_code == 401 and "did not come from this site" in call.json()["message"]
    assert client.post("/enrol/check/start", headers={"X-CSRF-Token": csrf}).status_code == 200


# ---------------------------------------------------------------------- the console


def test_operator_sign_in_is_rate_limited(client: TestClient, network: WebNetwork) -> None:
    csrf = csrf_of(client.get("/admin/login").text)
    for _ in range(5):
        wrong = client.post("/admin/login", data={"api_key": "fk_admin_nope", "csrf": csrf})
        assert wrong.status_code == 401 and "API key" in wrong.text
    limited = client.post("/admin/login", data={"api_key": network.keys["admin"], "csrf": csrf})
    assert limited.status_code == 429 and "Too many attempts" in limited.text


def test_the_console_needs_an_admin_key_and_ends_with_it(
    client: TestClient, network: WebNetwork, web_platform: Platform
) -> None:
    assert client.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"
    csrf = csrf_of(client.get("/admin/login").text)
    enrol_key = client.post("/admin/login", data={"api_key": network.keys["enrol"], "csrf": csrf})
    assert enrol_key.status_code == 401 and "admin API key" in enrol_key.text
    sign_in_operator(client, network)
    assert client.get("/admin").status_code == 200
    rotate_keys(web_platform.database, network.id, [Scope.ADMIN])
    assert client.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"


def test_console_pages_show_the_network(
    client: TestClient, network: WebNetwork, web_platform: Platform
) -> None:
    add_merchant(web_platform.database, network.id, "Corner Shop")
    sign_in_operator(client, network)
    overview = client.get("/admin").text
    assert network.name in overview and "Corner Shop" in overview
    assert "face-reid-0095" in client.get("/admin/engine").text
    assert "false_charge_target" in client.get("/admin/risk").text
    assert "The hash chain verifies" in client.get("/admin/audit").text
    assert "No checkouts" in client.get("/admin/totals?day=2026-01-02").text
    assert "written YYYY-MM-DD" in client.get("/admin/totals?day=02/01/2026").text
    det = client.get("/admin/engine/det.png")
    assert det.headers["content-type"] == "image/png" and det.content.startswith(b"\x89PNG")


def _device_states(platform: Platform, network: WebNetwork, count: int) -> list[str]:
    """``count`` devices: one working, one reporting a camera error, one silent for an hour,
    one disabled, the rest never heard from; their ids, oldest first."""
    merchant = add_merchant(platform.database, network.id, "Corner Shop").merchant_id
    store = add_store(platform.database, network.id, merchant, "High Street").store_id
    ids = [
        add_device(platform.database, platform.vault, network.id, store, f"till {i:02d}").device_id
        for i in range(count)
    ]
    now = datetime.now(UTC)
    seen = {ids[0]: (now, "ok"), ids[1]: (now, "error"), ids[2]: (now - timedelta(hours=1), "ok")}
    with platform.database.session() as session:
        for device_id, (when, camera) in seen.items():
            status = {
                "device_id": device_id,
                "network_id": network.id,
                "last_seen_at": when,
                "software_version": "1.0",
                "models": "[]",
                "uptime_s": 60,
                "last_error": None,
                "camera": camera,
                "release_id": None,
            }
            fleet_store.record_status(session, status=status)
    disable_device(platform.database, network.id, ids[3])
    return ids


def test_the_console_counts_every_device_and_lists_them_a_page_at_a_time(
    client: TestClient, network: WebNetwork, web_platform: Platform
) -> None:
    ids = _device_states(web_platform, network, console.DEVICES_PER_PAGE + 5)
    sign_in_operator(client, network)
    first = client.get("/admin").text
    assert f"{len(ids)} devices:" in first
    for phrase in (
        "1 working",
        "1 reporting a problem",
        "1 not heard from for 3 minutes",
        f"{len(ids) - 4} never heard from",
        "1 disabled",
    ):
        assert phrase in first, phrase
    assert first.count("till ") == console.DEVICES_PER_PAGE
    assert "till 00" in first and "Later devices" in first and "Earlier devices" not in first
    later = client.get(f"/admin?devices_from={console.DEVICES_PER_PAGE}").text
    assert later.count("till ") == 5 and "Earlier devices" in later and "Later devices" not in later
    # The counts in the database follow the rule each listed device is shown with.
    admin = Principal(parse_token(network.keys["admin"]).key_id, network.id, Scope.ADMIN)
    overview = console.overview(web_platform, admin, 0)
    shown = Counter(d.health for d in overview.devices)
    assert {k: shown[k] for k in ("ok", "degraded", "offline", "disabled")} == {
        k: overview.device_health[k] for k in ("ok", "degraded", "offline", "disabled")
    }


# ---------------------------------------------------------------------- enrolment


def test_an_enrolment_link_works_once_and_a_kiosk_link_many_times(
    client: TestClient, network: WebNetwork
) -> None:
    link = issue(client, network, "enrol-link", kind="person")
    assert client.get(link.replace("http://127.0.0.1", "")).status_code == 200  # a preview
    open_enrolment(client, link)
    again = client.post(
        "/enrol/start",
        data={"code": link.rsplit("/", 1)[1], "csrf": csrf_of(client.get("/enrol").text)},
    )
    assert again.status_code == 401 and "not valid" in again.text
    kiosk = issue(client, network, "enrol-link", kind="kiosk")
    open_enrolment(client, kiosk)
    open_enrolment(client, kiosk)


def test_enrolment_by_the_page_and_its_errors_in_words(
    client: TestClient, network: WebNetwork, web_platform: Platform, challenges: list[str]
) -> None:
    csrf = open_enrolment(client, issue(client, network, "enrol-link", kind="person"))
    early = client.post(
        "/enrol/complete",
        headers={"X-CSRF-Token": csrf},
        data={"terms_version": "2026-12", "purposes": ["payment"], "pin": "4321"},
    )
    assert early.status_code == 422 and "camera check first" in early.json()["message"]
    enrolled = enrol_through_page(client, network)
    assert enrolled.status_code == 200, enrolled.text
    assert "You are enrolled" in enrolled.json()["message"]
    assert "facekey_enrol=" in enrolled.headers["set-cookie"]  # the link's session ends
    assert len(_subjects(web_platform, network)) == 1
    duplicate = enrol_through_page(client, network)
    assert duplicate.status_code == 422
    assert duplicate.json()["message"].startswith("You are already enrolled")


def test_a_still_photo_fails_the_camera_check(
    client: TestClient, network: WebNetwork, challenges: list[str]
) -> None:
    csrf = open_enrolment(client, issue(client, network, "enrol-link", kind="person"))
    checked = camera_check(client, "enrol", csrf, STILL)
    assert checked.status_code == 200 and checked.json()["live"] is False
    assert "camera check did not pass" in checked.json()["message"]


def test_a_phone_or_pin_is_needed(
    client: TestClient, network: WebNetwork, challenges: list[str]
) -> None:
    csrf = open_enrolment(client, issue(client, network, "enrol-link", kind="person"))
    assert camera_check(client, "enrol", csrf).json()["live"]
    answer = client.post(
        "/enrol/complete",
        headers={"X-CSRF-Token": csrf},
        data={"terms_version": "2026-12", "purposes": ["payment"]},
    )
    assert answer.status_code == 422 and "phone number or a PIN" in answer.json()["message"]


# ---------------------------------------------------------------------- the portal


def test_portal_with_a_code_export_withdraw_exclude_erase(
    client: TestClient, network: WebNetwork, web_platform: Platform, challenges: list[str]
) -> None:
    merchant = add_merchant(web_platform.database, network.id, "Bakery").merchant_id
    assert enrol_through_page(client, network).status_code == 200
    (subject_id,) = _subjects(web_platform, network)
    code = issue(client, network, "portal-code", subject_id=subject_id)
    csrf = csrf_of(client.get("/me").text)
    page = client.post("/me/code", data={"code": code.lower(), "csrf": csrf})
    assert "+44 20 7946 0123" in page.text and "face-reid-0095" in page.text
    csrf = csrf_of(page.text)
    page = client.post("/me/withdraw", data={"purpose": "personalization", "csrf": csrf})
    assert "Consent withdrawn: Personalised offers" in page.text
    page = client.post(
        "/me/exclusions", data={"merchant_id": merchant, "exclude": "yes", "csrf": csrf}
    )
    assert "You will not pay by face there" in page.text and "no (excluded)" in page.text
    download = client.get("/me/export.json")
    assert "attachment" in download.headers["content-disposition"]
    assert json.loads(download.text)["subject_id"] == subject_id
    assert "Tick the box" in client.post("/me/erase", data={"csrf": csrf}).text
    erased = client.post("/me/erase", data={"csrf": csrf, "confirm": "yes"})
    assert "Everything is erased" in erased.text
    receipt = json.loads(client.get("/me/receipt.json").text)
    assert receipt["templates_erased"] >= 1 and receipt["destroyed"]["data_key"] is True
    assert _subjects(web_platform, network) == []


def test_portal_codes_are_rate_limited(client: TestClient, network: WebNetwork) -> None:
    csrf = csrf_of(client.get("/me").text)
    for _ in range(5):
        wrong = client.post("/me/code", data={"code": "AAAAA-BBBBB", "csrf": csrf})
        assert wrong.status_code == 401 and "not valid" in wrong.text
    assert client.post("/me/code", data={"code": "x", "csrf": csrf}).status_code == 429


def test_portal_sign_in_with_the_face_and_the_phone_digits(
    client: TestClient, network: WebNetwork, web_platform: Platform, challenges: list[str]
) -> None:
    assert enrol_through_page(client, network).status_code == 200
    csrf = csrf_of(client.get(f"/me?network={network.name}").text)
    assert camera_check(client, "me", csrf).json()["live"]
    wrong = client.post("/me/face", headers={"X-CSRF-Token": csrf}, data={"digits": "9999"})
    assert wrong.status_code == 401 and "could not find you" in wrong.json()["message"]
    assert camera_check(client, "me", csrf).json()["live"]
    signed = client.post("/me/face", headers={"X-CSRF-Token": csrf}, data={"digits": "0123"})
    assert signed.json() == {"next": "/me"}, signed.text
    assert "+44 20 7946 0123" in client.get("/me").text
    (subject_id,) = _subjects(web_platform, network)
    client.delete(f"/v1/subjects/{subject_id}", headers=network.auth("privacy"))
    assert "Sign in with the code" in client.get("/me").text  # erased elsewhere: signed out


def test_failed_camera_checks_are_rate_limited(
    client: TestClient, network: WebNetwork, web_platform: Platform, challenges: list[str]
) -> None:
    csrf = csrf_of(client.get(f"/me?network={network.name}").text)
    for _ in range(5):
        assert camera_check(client, "me", csrf, STILL[:3]).json()["live"] is False
    limited = client.post("/me/check/start", headers={"X-CSRF-Token": csrf})
    assert limited.status_code == 429 and "Too many attempts" in limited.json()["message"]
    assert limited.headers["retry-after"].isdigit()
    with web_platform.database.read_session() as session:
        assert web_store.count_sessions(session, kind="portal") >= 1


def test_without_jinja2_the_api_runs_without_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise errors.MissingExtra("the web pages need Jinja2: install facekey[web]")

    monkeypatch.setattr(pages, "Pages", missing)
    app = FastAPI()
    assert install_web(app) is False
    assert not any(getattr(route, "path", "").startswith("/admin") for route in app.routes)


def test_errors_are_said_in_words() -> None:
    status, words = message_for(errors.DuplicateEnrolment("x", existing_subject_id="s"))
    assert status == 422 and words.startswith("You are already enrolled")
    assert "could not see a face" in message_for(errors.NoFace("no face"))[1]
    assert "about 2 minutes" in message_for(errors.LivenessLocked("x", retry_after_s=100))[1]
    assert message_for(RuntimeError("bug"))[0] == 500
