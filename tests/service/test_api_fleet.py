"""The fleet over the API: provisioning from a one-time token, heartbeats and health, staged
releases and pins, disabling at once, metrics, screening counts; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_helpers import Network, identify
from fastapi.testclient import TestClient
from sqlalchemy import update

from facekey.client import ApiError
from facekey.edge.transport import enrol
from facekey.flows import fleet
from facekey.flows.devices import add_device
from facekey.flows.platform import Platform
from facekey.store import tenants
from facekey.store.tables import DeviceStatus, EnrolmentToken
from fleet_helpers import config_of, device_client, enrolment_token, new_store, provision

MODEL = {"name": "face-reid-0095", "version": "1", "sha256": "a" * 64}


@pytest.fixture(autouse=True)
def fresh_releases(client: TestClient) -> None:
    """Heartbeats see releases and pins at once (workers cache them for 10 s)."""
    client.app.state.fleet_releases = fleet.ReleaseCache(0.0)  # type: ignore[attr-defined]


def _beat(client: TestClient, enrolment: dict[str, Any], **changes: Any) -> Any:
    body = {
        "software_version": "0.1.0",
        "models": [MODEL],
        "uptime_s": 42,
        "camera": "ok",
    } | changes
    return device_client(client, config_of(enrolment)).post_json("/v1/fleet/heartbeat", body)


def _problem(exc: pytest.ExceptionInfo[ApiError], status: int, slug: str) -> None:
    assert exc.value.status == status and exc.value.problem["type"].endswith("/" + slug)


# ---------------------------------------------------------------------- provisioning


def test_a_token_provisions_one_device_once(
    client: TestClient, platform: Platform, network: Network
) -> None:
    store_id = new_store(platform, network.id)
    token = enrolment_token(client, network.auth("admin"), store_id, name="till 7")
    first = enrol("http://testserver", token, http=client)
    assert set(first) == {
        "device_id",
        "store_id",
        "merchant_id",
        "network_id",
        "secret",
        "api_key",
        "heartbeat_s",
    }
    assert first["store_id"] == store_id and first["api_key"].startswith("fk_terminal_")
    with pytest.raises(ApiError) as again:
        enrol("http://testserver", token, http=client)
    _problem(again, 401, "authentication-failed")
    second = provision(client, network.auth("admin"), store_id)
    # A device receives its own secret and key, and nothing of another device's.
    assert second["secret"] != first["secret"] and second["api_key"] != first["api_key"]
    assert first["secret"] not in str(second) and first["api_key"] not in str(second)
    with platform.database.session() as session:
        device = tenants.get_device(session, device_id=first["device_id"])
        assert device is not None and device.name == "till 7"


def test_expired_forged_and_other_scope_tokens(
    client: TestClient, platform: Platform, network: Network
) -> None:
    store_id = new_store(platform, network.id)
    token = enrolment_token(client, network.auth("admin"), store_id)
    with platform.database.session() as session:
        session.execute(
            update(EnrolmentToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    for bad in (token, token[:-4] + "AAAA", "fe_nonsense"):
        with pytest.raises(ApiError) as refused:
            enrol("http://testserver", bad, http=client)
        _problem(refused, 401, "authentication-failed")
    denied = client.post(
        "/v1/fleet/enrolment-tokens", headers=network.auth("terminal"), json={"store_id": store_id}
    )
    assert denied.status_code == 403


# ---------------------------------------------------------------------- heartbeats and health


def test_heartbeats_give_last_seen_and_health(
    client: TestClient, platform: Platform, network: Network
) -> None:
    store_id = new_store(platform, network.id)
    admin = network.auth("admin")
    healthy, broken, silent = (provision(client, admin, store_id) for _ in range(3))
    assert _beat(client, healthy) == {"release": None, "heartbeat_s": 60}
    _beat(client, broken, camera="missing", last_error="camera unplugged")
    listed = {d["device_id"]: d for d in client.get("/v1/fleet/devices", headers=admin).json()}
    assert listed[healthy["device_id"]]["health"] == "ok"
    assert listed[healthy["device_id"]]["models"] == [MODEL]
    assert listed[healthy["device_id"]]["uptime_s"] == 42
    assert listed[broken["device_id"]]["health"] == "degraded"
    assert listed[broken["device_id"]]["last_error"] == "camera unplugged"
    assert listed[silent["device_id"]]["health"] == "never_seen"
    with platform.database.session() as session:
        session.execute(
            update(DeviceStatus)
            .where(DeviceStatus.device_id == healthy["device_id"])
            .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=10))
        )
    one = client.get(f"/v1/fleet/devices/{healthy['device_id']}", headers=admin).json()
    assert one["health"] == "offline"


@pytest.mark.parametrize(
    "changes",
    [
        {"uptime_s": -1},
        {"camera": "blurry"},
        {"models": [{"name": "x", "version": "1", "sha256": "nothex"}]},
        {"software_version": ""},
        {"last_error": "x" * 600},
    ],
)
def test_malformed_heartbeats(
    client: TestClient, platform: Platform, network: Network, changes: dict[str, Any]
) -> None:
    device = provision(client, network.auth("admin"), new_store(platform, network.id))
    with pytest.raises(ApiError) as refused:
        _beat(client, device, **changes)
    _problem(refused, 422, "invalid-request")


def test_disabling_refuses_the_next_call_and_revokes_the_key(
    client: TestClient, platform: Platform, network: Network, lfw: Any
) -> None:
    device = provision(client, network.auth("admin"), new_store(platform, network.id))
    _beat(client, device)
    done = client.post(
        f"/v1/fleet/devices/{device['device_id']}/disable", headers=network.auth("admin")
    )
    assert done.json() == {"device_id": device["device_id"], "disabled": True, "keys_revoked": 1}
    with pytest.raises(ApiError) as refused:
        _beat(client, device)
    assert refused.value.status == 401  # its key is revoked before its signature is checked
    unsigned = identify(
        client, Network(network.id, {"terminal": device["api_key"]}), lfw / "Aaron_Sorkin_0001.jpg"
    )
    assert unsigned.status_code == 401
    listed = client.get(f"/v1/fleet/devices/{device['device_id']}", headers=network.auth("admin"))
    assert listed.json()["health"] == "disabled"


# ---------------------------------------------------------------------- releases


def test_a_release_reaches_its_devices_and_a_pin_holds_one(
    client: TestClient, platform: Platform, network: Network
) -> None:
    admin = network.auth("admin")
    store_id = new_store(platform, network.id)
    device = provision(client, admin, store_id)
    body = {"software_version": "0.2.0", "models": [MODEL], "settings": {"heartbeat_s": 30}}
    first = client.post("/v1/fleet/releases", headers=admin, json=body).json()
    answered = _beat(client, device)
    assert answered["release"]["release_id"] == first["release_id"]
    assert answered["heartbeat_s"] == 30 and answered["release"]["models"] == [MODEL]
    store_only = client.post(
        "/v1/fleet/releases",
        headers=admin,
        json=body | {"store_id": store_id, "software_version": "0.3.0"},
    ).json()
    assert _beat(client, device)["release"]["release_id"] == store_only["release_id"]
    pinned = client.put(
        f"/v1/fleet/devices/{device['device_id']}/pin",
        headers=admin,
        json={"release_id": first["release_id"]},
    )
    assert pinned.status_code == 200
    assert _beat(client, device)["release"]["software_version"] == "0.2.0"
    client.delete(f"/v1/fleet/devices/{device['device_id']}/pin", headers=admin)
    assert _beat(client, device)["release"]["software_version"] == "0.3.0"
    bad = client.post("/v1/fleet/releases", headers=admin, json=body | {"settings": {"x": 1}})
    assert bad.status_code == 422


def test_a_staged_rollout_grows_over_the_same_devices(platform: Platform, network: Network) -> None:
    store_id = new_store(platform, network.id)
    ids = [
        add_device(platform.database, platform.vault, network.id, store_id).device_id
        for _ in range(200)
    ]
    base = fleet.create_release(platform.database, network.id, software_version="1.0")
    canary = fleet.create_release(
        platform.database, network.id, software_version="1.1", rollout_percent=10
    )

    def on_canary() -> set[str]:
        with platform.database.session() as session:
            book = fleet.ReleaseBook.load(session, network.id)
        chosen = {i: book.choose(i, store_id) for i in ids}
        assert all(r is not None for r in chosen.values())  # the others keep the base release
        return {i for i, r in chosen.items() if r and r.release_id == canary.release_id}

    ten = on_canary()
    assert 5 <= len(ten) <= 40  # ~10 % of 200 (binomial: far outside by chance only)
    fleet.set_rollout(platform.database, network.id, canary.release_id, 50)
    fifty = on_canary()
    assert ten < fifty and 70 <= len(fifty) <= 130
    fleet.set_rollout(platform.database, network.id, canary.release_id, 100)
    assert on_canary() == set(ids)
    assert base.rollout_percent == 100


def test_workers_cache_releases_for_a_while(platform: Platform, network: Network) -> None:
    store_id = new_store(platform, network.id)
    device = add_device(platform.database, platform.vault, network.id, store_id).device_id
    cache = fleet.ReleaseCache(3600.0)
    with platform.database.session() as session:
        assert cache.book(session, network.id).choose(device, store_id) is None
    fleet.create_release(platform.database, network.id, software_version="2.0")
    with platform.database.session() as session:
        assert cache.book(session, network.id).choose(device, store_id) is None
        fresh = fleet.ReleaseCache(0.0).book(session, network.id).choose(device, store_id)
    assert fresh is not None and fresh.software_version == "2.0"


# ---------------------------------------------------------------------- metrics and counts


def test_metrics_count_devices_online_by_version(
    client: TestClient, platform: Platform, network: Network
) -> None:
    store_id = new_store(platform, network.id)
    for version in ("7.1", "7.1", "7.2"):
        _beat(client, provision(client, network.auth("admin"), store_id), software_version=version)
    text = client.get("/metrics").text
    line = f'facekey_devices_online{{network="{network.id}",version="7.1"}} 2.0'
    assert line in text
    assert f'facekey_devices_online{{network="{network.id}",version="7.2"}} 1.0' in text
    assert f'facekey_devices{{network="{network.id}",state="enabled"}} 3.0' in text


def test_screening_counts_per_hour(
    client: TestClient, platform: Platform, network: Network
) -> None:
    kiosk = device_client(
        client, config_of(provision(client, network.auth("admin"), new_store(platform, network.id)))
    )
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    body = {"hour": hour.isoformat(), "screened": 40, "referred": 2, "failed": 3}
    kiosk.post_json("/v1/fleet/screening-counts", body)
    kiosk.post_json("/v1/fleet/screening-counts", body | {"screened": 41})  # the hour's totals
    day = client.get(
        f"/v1/fleet/screening?day={hour.date().isoformat()}", headers=network.auth("admin")
    ).json()
    assert day["hours"] == [
        {"hour": hour.isoformat(), "kiosks": 1, "screened": 41, "referred": 2, "failed": 3}
    ]
    for bad in ({"referred": 50}, {"hour": "2026-01-01T10:30:00+00:00"}, {"screened": -1}):
        with pytest.raises(ApiError) as refused:
            kiosk.post_json("/v1/fleet/screening-counts", body | bad)
        _problem(refused, 422, "invalid-request")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/fleet/enrolment-tokens", {"ttl_minutes": 1e308}),
        ("POST", "/v1/fleet/enrolment-tokens", {"ttl_minutes": 10**400}),
        ("POST", "/v1/fleet/enrolment-tokens", {"name": "till\x00"}),
        ("POST", "/v1/fleet/enrolment-tokens", {"store_id": "\x00"}),
        ("POST", "/v1/fleet/releases", {"rollout_percent": 10**400}),
        ("GET", "/v1/fleet/screening?day=9999-12-31", None),
        ("GET", "/v1/fleet/devices?offset=99999999999999999999", None),
        ("GET", "/v1/fleet/devices/%00", None),
    ],
)
def test_out_of_range_input_is_a_422_not_a_500(
    platform: Platform,
    client: TestClient,
    network: Network,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    """Each of these was a 500: an overflow (timedelta, float, the day after 9999-12-31, an
    OFFSET past what the database takes) or, on PostgreSQL, a NUL it cannot store."""
    sent = None
    if body is not None:
        store_id = new_store(platform, network.id)
        sent = {"store_id": store_id, "software_version": "1.0"} | body
        sent = json.dumps(sent).encode()  # 10**400 as JSON digits, as a client may send
    answer = client.request(
        method,
        path,
        headers=network.auth("admin") | {"Content-Type": "application/json"},
        content=sent,
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
