"""Pay by face over signed terminal calls, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from api_helpers import Network, Terminal, enrol, multipart, new_terminal
from fastapi.testclient import TestClient
from PIL import Image

from facekey.flows.devices import disable_device
from facekey.flows.platform import Platform

BOTH = json.dumps(
    {"purposes": ["payment", "personalization"], "terms_version": "2026-01", "channel": "app"}
)


class CheckoutTerminal(Terminal):
    """A terminal that pays with an image file."""

    def checkout(
        self, client: TestClient, image: Path, key: str, amount: int = 1250, **signing: Any
    ) -> Any:
        files = [("image", (image.name, image.read_bytes(), "image/jpeg"))]
        return self.post(client, "/v1/checkout", self.sale(key, amount), files, **signing)


def _terminal(
    platform: Platform, network: Network, merchant: str = "Corner Shop"
) -> CheckoutTerminal:
    return CheckoutTerminal(**vars(new_terminal(platform, network, merchant)))


@pytest.fixture
def terminal(platform: Platform, network: Network) -> CheckoutTerminal:
    return _terminal(platform, network)


def _enrol(client: TestClient, network: Network, photo: Path, **fields: str) -> str:
    response = enrol(client, network, photo, payment_token="tok_123", **fields)
    assert response.status_code == 201, response.text
    return str(response.json()["subject_id"])


def test_face_only_approval_in_a_small_gallery(
    client: TestClient, terminal: CheckoutTerminal, lfw: Path
) -> None:
    subject = _enrol(client, terminal.network, lfw / "Aaron_Sorkin_0001.jpg", consent=BOTH)
    response = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "sale-1")
    body = response.json()
    assert response.status_code == 200, body
    assert body["decision"] == "approved", body
    assert body["payment_token"] == "tok_123"
    assert body["customer_id"].startswith("cus_")
    assert subject not in json.dumps(body)  # the subject id is never given to the merchant
    ledger = client.get(
        f"/v1/authorizations/{body['authorization_id']}", headers=terminal.network.auth("terminal")
    ).json()
    assert ledger["decision"] == "approved" and ledger["amount"] == 1250
    assert "vector" not in json.dumps(ledger)


def test_same_idempotency_key_same_answer_even_concurrently(
    client: TestClient, terminal: CheckoutTerminal, lfw: Path
) -> None:
    _enrol(client, terminal.network, lfw / "Aaron_Sorkin_0001.jpg")
    answers: list[dict[str, Any]] = []

    def pay() -> None:
        answers.append(terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "sale-9").json())

    threads = [threading.Thread(target=pay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = {a["authorization_id"] for a in answers}
    assert len(ids) == 1, answers
    assert {a["decision"] for a in answers} == {answers[0]["decision"]}
    other = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "sale-9", amount=99)
    assert other.status_code == 409


def test_customer_id_differs_per_merchant(
    client: TestClient, platform: Platform, network: Network, lfw: Path, tmp_path: Path
) -> None:
    _enrol(client, network, lfw / "Aaron_Peirsol_0001.jpg")
    first, second = _terminal(platform, network, "A"), _terminal(platform, network, "B")
    a = first.checkout(client, lfw / "Aaron_Peirsol_0002.jpg", "a1").json()
    # Another capture (re-encoded, so not an exact replay of the first image).
    recaptured = tmp_path / "recaptured.png"
    Image.open(lfw / "Aaron_Peirsol_0002.jpg").save(recaptured)
    b = second.checkout(client, recaptured, "b1").json()
    again = first.checkout(client, lfw / "Aaron_Peirsol_0001.jpg", "a2").json()
    assert a["decision"] == b["decision"] == again["decision"] == "approved"
    assert a["customer_id"] != b["customer_id"]
    assert a["customer_id"] == again["customer_id"]


def test_excluded_merchant_cannot_charge(
    client: TestClient, terminal: CheckoutTerminal, lfw: Path
) -> None:
    subject = _enrol(client, terminal.network, lfw / "Aaron_Peirsol_0001.jpg")
    excluded = client.put(
        f"/v1/subjects/{subject}/exclusions/{terminal.merchant_id}",
        headers=terminal.network.auth("privacy"),
    )
    assert excluded.status_code == 200
    body = terminal.checkout(client, lfw / "Aaron_Peirsol_0002.jpg", "x1").json()
    assert body["decision"] == "declined"


def test_personalization_only_under_consent(
    client: TestClient, terminal: CheckoutTerminal, lfw: Path
) -> None:
    subject = _enrol(client, terminal.network, lfw / "Aaron_Sorkin_0001.jpg", consent=BOTH)
    stored = client.put(
        f"/v1/subjects/{subject}/preferences/{terminal.merchant_id}",
        headers=terminal.network.auth("enrol"),
        json={"usual": "flat white"},
    )
    assert stored.status_code == 200, stored.text
    body = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "p1").json()
    assert body["personalization"] == {"usual": "flat white"}
    client.post(
        f"/v1/subjects/{subject}/consents/personalization/withdraw",
        headers=terminal.network.auth("privacy"),
    )
    later = terminal.checkout(client, lfw / "Aaron_Sorkin_0001.jpg", "p2").json()
    assert later["decision"] == "approved" and later["personalization"] is None


def test_amount_above_the_tier_steps_up_and_phone_digits_finish_it(
    client: TestClient, terminal: CheckoutTerminal, lfw: Path
) -> None:
    _enrol(client, terminal.network, lfw / "Aaron_Sorkin_0001.jpg", phone="+44 20 7946 0958")
    body = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "big", amount=50_000).json()
    assert body["decision"] == "step_up" and body["reason"] == "amount_requires_step_up"
    path = f"/v1/checkout/{body['authorization_id']}/step-up"
    image = [("image", ("p.jpg", (lfw / "Aaron_Sorkin_0002.jpg").read_bytes(), "image/jpeg"))]
    wrong = terminal.post(client, path, {"phone_digits": "1234"}, image).json()
    assert wrong["decision"] == "declined"
    # A new capture for the new attempt (the first image would be an exact replay).
    retry = terminal.checkout(client, lfw / "Aaron_Sorkin_0001.jpg", "big2", amount=50_000)
    path = f"/v1/checkout/{retry.json()['authorization_id']}/step-up"
    image = [("image", ("p.jpg", (lfw / "Aaron_Sorkin_0001.jpg").read_bytes(), "image/jpeg"))]
    right = terminal.post(client, path, {"phone_digits": "0958"}, image).json()
    assert right["decision"] == "approved", right
    assert right["payment_token"] == "tok_123"


def test_pin_step_up(client: TestClient, terminal: CheckoutTerminal, lfw: Path) -> None:
    _enrol(client, terminal.network, lfw / "Aaron_Peirsol_0001.jpg", pin="482915")
    body = terminal.checkout(client, lfw / "Aaron_Peirsol_0002.jpg", "pin", amount=50_000).json()
    path = f"/v1/checkout/{body['authorization_id']}/step-up"
    image = [("image", ("p.jpg", (lfw / "Aaron_Peirsol_0002.jpg").read_bytes(), "image/jpeg"))]
    assert terminal.post(client, path, {"pin": "482915"}, image).json()["decision"] == "approved"


def test_stranger_is_declined(
    client: TestClient, terminal: CheckoutTerminal, lfw: Path, fixtures: Path
) -> None:
    _enrol(client, terminal.network, lfw / "Aaron_Sorkin_0001.jpg")
    body = terminal.checkout(client, fixtures / "mfr2" / "AdrianDunbar_0002.png", "s1").json()
    assert body["decision"] in ("declined", "step_up")
    assert "payment_token" not in body


def test_exact_replay_of_an_image_is_declined(
    client: TestClient, terminal: CheckoutTerminal, lfw: Path
) -> None:
    _enrol(client, terminal.network, lfw / "Aaron_Sorkin_0001.jpg")
    first = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "r1").json()
    second = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "r2").json()
    assert first["decision"] == "approved"
    assert second["decision"] == "declined" and second["reason"] == "replayed_image"


# ---------------------------------------------------------------- signed-request refusals


def _refused(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(slug)


def test_wrong_signature(client: TestClient, terminal: CheckoutTerminal, lfw: Path) -> None:
    response = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "w", secret=b"x" * 32)
    _refused(response, 401, "signature-invalid")


def test_stale_timestamp(client: TestClient, terminal: CheckoutTerminal, lfw: Path) -> None:
    response = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "t", now=time.time() - 120)
    _refused(response, 401, "stale-request")


def test_reused_nonce(client: TestClient, terminal: CheckoutTerminal, lfw: Path) -> None:
    nonce = "n" * 24
    terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "n1", nonce=nonce)
    response = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "n2", nonce=nonce)
    _refused(response, 409, "replayed-request")


@pytest.mark.parametrize("authorization_id", ["no such", "caf\u00e9", "50%"])
def test_the_signature_covers_the_path_as_sent(
    client: TestClient, terminal: CheckoutTerminal, authorization_id: str
) -> None:
    """Found by Schemathesis: the server checked the signature against the decoded path, so a
    terminal's honest signature over a percent-encoded path was refused (401)."""
    path = f"/v1/checkout/{quote(authorization_id, safe='')}/step-up"
    response = terminal.post(client, path, {"phone_digits": "1234"})
    _refused(response, 404, "not-found")


def test_unsigned_call(client: TestClient, terminal: CheckoutTerminal) -> None:
    body, content_type = multipart({"amount": "100"})
    response = client.post(
        "/v1/checkout",
        content=body,
        headers=terminal.network.auth("terminal") | {"Content-Type": content_type},
    )
    _refused(response, 401, "signature-missing")


def test_disabled_device(
    client: TestClient, platform: Platform, terminal: CheckoutTerminal, lfw: Path
) -> None:
    disable_device(platform.database, terminal.network.id, terminal.device_id)
    response = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "d")
    _refused(response, 403, "device-disabled")


def test_wrong_merchant(
    client: TestClient, platform: Platform, terminal: CheckoutTerminal, lfw: Path
) -> None:
    other = _terminal(platform, terminal.network, "Someone Else")
    fields = {
        "amount": "100",
        "currency": "EUR",
        "merchant_id": other.merchant_id,
        "store_id": other.store_id,
        "idempotency_key": "m",
    }
    image = [("image", ("p.jpg", (lfw / "Aaron_Sorkin_0002.jpg").read_bytes(), "image/jpeg"))]
    refused = terminal.post(client, "/v1/checkout", fields, image)
    _refused(refused, 403, "merchant-mismatch")
    assert (
        refused.json()["title"]
        == "The terminal asked to charge for a store or merchant other than its own"
    )


def test_device_of_another_network(
    client: TestClient,
    platform: Platform,
    terminal: CheckoutTerminal,
    other_network: Network,
    lfw: Path,
) -> None:
    stranger = CheckoutTerminal(
        other_network, terminal.merchant_id, terminal.store_id, terminal.device_id, terminal.secret
    )
    _refused(stranger.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "o"), 401, "unknown-device")


def test_daily_totals_for_admins(client: TestClient, terminal: CheckoutTerminal, lfw: Path) -> None:
    _enrol(client, terminal.network, lfw / "Aaron_Sorkin_0001.jpg")
    terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "dt1")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    totals = client.get(
        "/v1/admin/daily-totals", params={"day": day}, headers=terminal.network.auth("admin")
    ).json()
    mine = [m for m in totals["merchants"] if m["merchant_id"] == terminal.merchant_id]
    assert mine and mine[0]["approved_count"] == 1 and mine[0]["approved_amount_minor"] == 1250
    refused = client.get(
        "/v1/admin/daily-totals", params={"day": day}, headers=terminal.network.auth("terminal")
    )
    assert refused.status_code == 403


def test_five_failed_step_ups_lock_the_account(
    client: TestClient, terminal: CheckoutTerminal, lfw: Path, tmp_path: Path
) -> None:
    _enrol(client, terminal.network, lfw / "Aaron_Sorkin_0001.jpg", phone="+44 20 7946 0958")
    _enrol(client, terminal.network, lfw / "Aaron_Peirsol_0001.jpg", phone="+44 20 7946 1111")

    def attempt(number: int, face: Path, digits: str) -> dict[str, Any]:
        capture = tmp_path / f"capture-{number}.jpg"  # a new capture each time: new bytes
        with Image.open(face) as photo:
            photo.save(capture, quality=95, comment=f"capture {number}".encode())
        body = terminal.checkout(client, capture, f"lock-{number}", amount=50_000).json()
        assert body["decision"] == "step_up", body
        path = f"/v1/checkout/{body['authorization_id']}/step-up"
        image = [("image", (capture.name, capture.read_bytes(), "image/jpeg"))]
        return dict(terminal.post(client, path, {"phone_digits": digits}, image).json())

    # Another enrolled customer's face typing the victim's digits, five times.
    for number in range(5):
        attack = attempt(number, lfw / "Aaron_Peirsol_0002.jpg", "0958")
        assert attack["decision"] == "declined" and attack["reason"] == "no_match_in_bucket"
    # The victim's account is now locked: even their own face is declined for a while.
    locked = terminal.checkout(client, lfw / "Aaron_Sorkin_0002.jpg", "lock-9").json()
    assert locked["decision"] == "declined" and locked["reason"] == "locked_out"
