"""Bad input gets a precise 4xx problem+json, and nothing is half-written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from api_helpers import CONSENT, Network, enrol, identify
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from facekey.flows.platform import Platform
from facekey.store.tables import AuditEvent, Subject


def _problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["detail"] and body["type"] and body["title"]
    return body


def _counts(platform: Platform, network: Network) -> tuple[int, int]:
    with platform.database.session() as session:
        subjects = session.scalar(
            select(func.count()).select_from(Subject).where(Subject.network_id == network.id)
        )
        events = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.network_id == network.id)
        )
    return int(subjects or 0), int(events or 0)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_malformed_multipart(client: TestClient, network: Network) -> None:
    response = client.post(
        "/v1/subjects",
        headers={**network.auth("enrol"), "Content-Type": "multipart/form-data; boundary=xyz"},
        content=b"--xyz\r\nthis is not a part\r\n",
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"


def test_missing_consent(client: TestClient, network: Network, lfw: Path) -> None:
    response = client.post(
        "/v1/subjects",
        headers=network.auth("enrol"),
        files=[("images", ("a.jpg", (lfw / "Aaron_Sorkin_0001.jpg").read_bytes(), "image/jpeg"))],
    )
    body = _problem(response, 422)
    assert "consent" in str(body["detail"])


@pytest.mark.parametrize(
    ("consent", "reason"),
    [
        ("not json", "invalid consent"),
        (json.dumps({"purposes": ["marketing"], "terms_version": "1", "channel": "x"}), "purposes"),
        (json.dumps({"purposes": [], "terms_version": "1", "channel": "x"}), "purposes"),
        (json.dumps({"purposes": ["payment"], "channel": "x"}), "terms_version"),
        (
            json.dumps(
                {"purposes": ["payment"], "terms_version": "1", "channel": "x", "extra": True}
            ),
            "extra",
        ),
    ],
)
def test_invalid_consent(
    client: TestClient, network: Network, lfw: Path, consent: str, reason: str
) -> None:
    body = _problem(enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg", consent=consent), 422)
    assert reason in str(body["detail"])


def test_non_image(client: TestClient, network: Network) -> None:
    response = client.post(
        "/v1/subjects",
        headers=network.auth("enrol"),
        data={"consent": CONSENT},
        files=[("images", ("a.jpg", b"%PDF-1.4 definitely not a photo", "image/jpeg"))],
    )
    _problem(response, 415)


def test_truncated_image(client: TestClient, network: Network, lfw: Path) -> None:
    data = (lfw / "Aaron_Sorkin_0001.jpg").read_bytes()
    response = client.post(
        "/v1/identify",
        headers=network.auth("terminal"),
        files=[("image", ("a.jpg", data[: len(data) // 2], "image/jpeg"))],
    )
    _problem(response, 422)


def test_oversized_upload(client: TestClient, platform: Platform, network: Network) -> None:
    big = b"\xff\xd8" + b"\0" * (platform.settings.images.max_bytes + 10)
    response = client.post(
        "/v1/identify",
        headers=network.auth("terminal"),
        files=[("image", ("big.jpg", big, "image/jpeg"))],
    )
    _problem(response, 413)


def test_too_many_images(client: TestClient, network: Network, lfw: Path) -> None:
    paths = [lfw / "Aaron_Sorkin_0001.jpg"] * 6
    _problem(enrol(client, network, *paths), 422)


def test_unknown_subject(client: TestClient, network: Network) -> None:
    response = client.get(
        "/v1/subjects/00000000-0000-0000-0000-000000000000/export",
        headers=network.auth("privacy"),
    )
    _problem(response, 404)


def test_no_face(client: TestClient, network: Network) -> None:
    grey = np.full((240, 240, 3), 128, dtype=np.uint8)
    response = client.post(
        "/v1/subjects",
        headers=network.auth("enrol"),
        data={"consent": CONSENT},
        files=[("images", ("grey.png", _png(grey), "image/png"))],
    )
    body = _problem(response, 422)
    assert "no face" in str(body["detail"])


def test_several_faces(client: TestClient, network: Network, lfw: Path) -> None:
    body = _problem(enrol(client, network, lfw / "Colin_Farrell_0003.jpg"), 422)
    assert "faces" in str(body["detail"])


def test_low_quality(client: TestClient, network: Network, lfw: Path) -> None:
    small = Image.open(lfw / "Aaron_Sorkin_0001.jpg").resize((100, 100))
    tiny = np.asarray(Image.new("RGB", (400, 400), (128, 128, 128)))
    canvas = tiny.copy()
    canvas[150:250, 150:250] = np.asarray(small)
    response = client.post(
        "/v1/subjects",
        headers=network.auth("enrol"),
        data={"consent": CONSENT},
        files=[("images", ("small.png", _png(canvas), "image/png"))],
    )
    body = _problem(response, 422)
    assert "too small" in str(body["detail"]) or "no face" in str(body["detail"])


def test_card_number_as_payment_token(client: TestClient, network: Network, lfw: Path) -> None:
    response = enrol(
        client, network, lfw / "Aaron_Sorkin_0001.jpg", payment_token="4111 1111 1111 1111"
    )
    body = _problem(response, 422)
    assert "card number" in str(body["detail"])


def test_bad_phone(client: TestClient, network: Network, lfw: Path) -> None:
    _problem(enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg", phone="call me"), 422)


def test_identify_arguments(client: TestClient, network: Network, lfw: Path) -> None:
    probe = lfw / "Aaron_Sorkin_0001.jpg"
    _problem(identify(client, network, probe, purpose="marketing"), 422)


def test_withdraw_unknown_purpose(client: TestClient, network: Network, lfw: Path) -> None:
    subject_id = enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg").json()["subject_id"]
    response = client.post(
        f"/v1/subjects/{subject_id}/consents/marketing/withdraw", headers=network.auth("privacy")
    )
    _problem(response, 422)


def test_failed_enrolment_writes_nothing(
    client: TestClient, platform: Platform, network: Network, lfw: Path
) -> None:
    before = _counts(platform, network)
    grey = np.full((240, 240, 3), 128, dtype=np.uint8)
    response = client.post(
        "/v1/subjects",
        headers=network.auth("enrol"),
        data={"consent": CONSENT},
        files=[
            ("images", ("a.jpg", (lfw / "Aaron_Sorkin_0001.jpg").read_bytes(), "image/jpeg")),
            ("images", ("grey.png", _png(grey), "image/png")),
        ],
    )
    _problem(response, 422)
    mixed = enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg", lfw / "Aaron_Peirsol_0001.jpg")
    assert "same person" in str(_problem(mixed, 422)["detail"])
    assert _counts(platform, network) == before
