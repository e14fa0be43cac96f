"""End to end with real images and the real engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from api_helpers import CONSENT, Network, enrol, identify, verify
from fastapi.testclient import TestClient

from facekey.flows.platform import Platform
from facekey.store.audit import verify_chain

PEOPLE = ("Aaron_Peirsol", "Aaron_Sorkin", "Abdel_Nasser_Assidi")
BOTH = json.dumps(
    {"purposes": ["payment", "personalization"], "terms_version": "2026-01", "channel": "app"}
)


def _enrol_people(client: TestClient, network: Network, lfw: Path) -> dict[str, str]:
    ids = {}
    for person in PEOPLE:
        response = enrol(client, network, lfw / f"{person}_0001.jpg", phone="+44 20 7946 0958")
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["templates"] == 1 and len(body["quality"]) == 1
        ids[person] = body["subject_id"]
    return ids


def test_enrol_identify_verify_withdraw_erase_export(
    client: TestClient, network: Network, lfw: Path, fixtures: Path, platform: Platform
) -> None:
    ids = _enrol_people(client, network, lfw)
    for person, subject_id in ids.items():
        body = identify(client, network, lfw / f"{person}_0002.jpg", purpose="payment").json()
        assert body["match"] == subject_id, (person, body)
        assert body["rule"] == "union-bound" and body["gallery_size"] == len(PEOPLE)
        assert body["false_match_target"] == platform.settings.identify_false_match_target
        assert 0 < body["estimated_false_match"] <= body["false_match_target"]
        assert "candidates" not in body  # a terminal sees the decision, not who else is close

    stranger = identify(client, network, fixtures / "mfr2" / "AdrianDunbar_0002.png").json()
    assert stranger["match"] is None
    assert set(stranger) == {
        "match",
        "rule",
        "gallery_size",
        "false_match_target",
        "estimated_false_match",
    }

    sorkin = ids["Aaron_Sorkin"]
    verified = verify(client, network, sorkin, lfw / "Aaron_Sorkin_0002.jpg", "payment").json()
    assert verified["match"] is True and verified["fmr"] <= verified["fmr_target"]
    impostor = verify(client, network, sorkin, lfw / "Aaron_Peirsol_0002.jpg", "payment").json()
    assert impostor["match"] is False

    withdrawn = client.post(
        f"/v1/subjects/{sorkin}/consents/payment/withdraw", headers=network.auth("privacy")
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn"] is True
    after = identify(client, network, lfw / "Aaron_Sorkin_0002.jpg", purpose="payment").json()
    assert after["match"] is None
    # Verification needs the purpose too: withdrawn, the subject is not there for it.
    refused = verify(client, network, sorkin, lfw / "Aaron_Sorkin_0002.jpg", "payment")
    assert refused.status_code == 404, refused.text

    export = client.get(f"/v1/subjects/{sorkin}/export", headers=network.auth("privacy")).json()
    assert export["phone"] == "+44 20 7946 0958"
    assert export["consents"][0]["purpose"] == "payment"
    assert export["consents"][0]["withdrawn_at"] is not None
    assert export["templates"][0]["engine_id"] == platform.settings.engine
    assert "vector" not in json.dumps(export["templates"])
    assert {e["action"] for e in export["audit_events"]} >= {"subject.enrol", "identify"}

    peirsol = ids["Aaron_Peirsol"]
    erased = client.delete(f"/v1/subjects/{peirsol}", headers=network.auth("privacy"))
    assert erased.status_code == 200, erased.text
    receipt = erased.json()["receipt"]
    assert erased.json()["erased"] is True and receipt["templates_erased"] == 1
    for name in ("Aaron_Peirsol_0001.jpg", "Aaron_Peirsol_0002.jpg"):
        again = identify(client, network, lfw / name).json()
        assert again["match"] != peirsol
        assert again["gallery_size"] == len(PEOPLE) - 1
    gone = client.get(f"/v1/subjects/{peirsol}/export", headers=network.auth("privacy"))
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"

    with platform.database.session() as session:
        assert verify_chain(session, network_id=network.id).ok


def test_withdrawing_one_purpose_keeps_the_other(
    client: TestClient, network: Network, lfw: Path
) -> None:
    subject = enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg", consent=BOTH).json()
    client.post(
        f"/v1/subjects/{subject['subject_id']}/consents/payment/withdraw",
        headers=network.auth("privacy"),
    )
    probe = lfw / "Aaron_Sorkin_0002.jpg"
    assert identify(client, network, probe, purpose="payment").json()["match"] is None
    personal = identify(client, network, probe, purpose="personalization").json()
    assert personal["match"] == subject["subject_id"]


def test_add_images_and_reject_someone_else(
    client: TestClient, network: Network, lfw: Path
) -> None:
    subject_id = enrol(client, network, lfw / "Aaron_Sorkin_0001.jpg").json()["subject_id"]
    added = client.post(
        f"/v1/subjects/{subject_id}/images",
        headers=network.auth("enrol"),
        files=[("images", ("b.jpg", (lfw / "Aaron_Sorkin_0002.jpg").read_bytes(), "image/jpeg"))],
    )
    assert added.status_code == 201, added.text
    other = client.post(
        f"/v1/subjects/{subject_id}/images",
        headers=network.auth("enrol"),
        files=[("images", ("c.jpg", (lfw / "Aaron_Peirsol_0001.jpg").read_bytes(), "image/jpeg"))],
    )
    assert other.status_code == 422
    assert "enrolled subject" in other.json()["detail"]


def test_enrolment_with_two_images_of_one_person(
    client: TestClient, network: Network, lfw: Path
) -> None:
    response = enrol(
        client, network, lfw / "Abdel_Nasser_Assidi_0001.jpg", lfw / "Abdel_Nasser_Assidi_0002.jpg"
    )
    assert response.status_code == 201
    assert response.json()["templates"] == 2


def test_duplicate_enrolment_names_the_subject_to_admins_only(
    client: TestClient, network: Network, lfw: Path
) -> None:
    first = enrol(client, network, lfw / "Aaron_Peirsol_0001.jpg").json()["subject_id"]
    again = enrol(client, network, lfw / "Aaron_Peirsol_0001.jpg")
    assert again.status_code == 422
    assert again.json()["type"].endswith("duplicate-enrolment")
    assert "existing_subject_id" not in again.json()
    as_admin = client.post(
        "/v1/subjects",
        headers=network.auth("admin"),
        data={"consent": CONSENT},
        files=[("images", ("a.jpg", (lfw / "Aaron_Peirsol_0001.jpg").read_bytes(), "image/jpeg"))],
    )
    assert as_admin.status_code == 422
    assert as_admin.json()["existing_subject_id"] == first


def test_operations_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["engine"] == "face-reid-0095:1"
    metrics = client.get("/metrics").text
    assert "facekey_requests_total" in metrics
    assert client.get("/openapi.json").json()["info"]["title"] == "facekey"
    assert client.get("/docs").status_code == 200


def test_the_access_log_names_routes_not_paths(
    client: TestClient, network: Network, caplog: pytest.LogCaptureFixture
) -> None:
    # A path can hold a subject id (or, on the pages, an enrolment code): the access log
    # writes the route template, the status, the time and the request id, never the path.
    subject_id = "0123456789abcdef-not-a-subject"
    with caplog.at_level(logging.INFO, logger="facekey.access"):
        answer = client.get(
            f"/v1/subjects/{subject_id}/export",
            headers={**network.auth("privacy"), "X-Request-ID": "trace-12345678"},
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "facekey.access"]
    assert answer.status_code == 404
    assert len(lines) == 1
    assert re.fullmatch(
        r"GET /v1/subjects/\{subject_id\}/export 404 [0-9.]+ ms trace-12345678", lines[0]
    )
    assert subject_id not in caplog.text
