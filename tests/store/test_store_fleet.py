"""The fleet's rows: a heartbeat replaces the device's status row (one upsert); both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from facekey.store import fleet, tenants
from facekey.store.database import Database
from facekey.store.tables import DeviceStatus

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _device(database: Database, network_id: str) -> str:
    with database.session() as session:
        merchant = tenants.create_merchant(session, network_id=network_id, name="Shop")
        store = tenants.create_store(session, merchant_id=merchant.id, name="High Street")
        device = tenants.create_device(
            session, store_id=store.id, network_id=network_id, wrapped_secret=b"w", kek_id="k"
        )
        return device.id


def _status(device_id: str, network_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "network_id": network_id,
        "last_seen_at": NOW,
        "software_version": "0.1.0",
        "models": "[]",
        "uptime_s": 1,
        "last_error": None,
        "camera": "ok",
        "release_id": None,
    } | changes


def test_a_heartbeat_replaces_the_status_row(database: Database, network_id: str) -> None:
    device_id = _device(database, network_id)
    with database.session() as session:
        fleet.record_status(session, status=_status(device_id, network_id))
    later = NOW + timedelta(minutes=1)
    second = _status(
        device_id, network_id, last_seen_at=later, uptime_s=61, camera="error", last_error="x"
    )
    with database.session() as session:
        fleet.record_status(session, status=second)
    with database.read_session() as session:
        rows = list(
            session.scalars(select(DeviceStatus).where(DeviceStatus.device_id == device_id))
        )
    assert [(r.last_seen_at, r.uptime_s, r.camera, r.last_error) for r in rows] == [
        (later, 61, "error", "x")
    ]
