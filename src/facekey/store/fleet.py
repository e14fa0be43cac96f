"""The fleet's rows: enrolment tokens, releases and pins, last heartbeats, screening counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from facekey.store.audit import canonical_json
from facekey.store.statements import insert_new, rowcount, upsert
from facekey.store.tables import (
    ApiKey,
    Device,
    DevicePin,
    DeviceStatus,
    EnrolmentToken,
    FleetRelease,
    ScreeningCount,
    utcnow,
)

# ---------------------------------------------------------------------- enrolment tokens


def add_enrolment_token(
    session: Session,
    *,
    token_id: str,
    network_id: str,
    store_id: str,
    secret_hash: str,
    expires_at: datetime,
    name: str | None = None,
) -> EnrolmentToken:
    """Store a new token (only the hash of its secret)."""
    token = EnrolmentToken(
        id=token_id,
        network_id=network_id,
        store_id=store_id,
        secret_hash=secret_hash,
        expires_at=expires_at,
        name=name,
    )
    session.add(token)
    session.flush()
    return token


def get_enrolment_token(session: Session, *, token_id: str) -> EnrolmentToken | None:
    """The token with this id, used or not."""
    return session.get(EnrolmentToken, token_id)


def claim_enrolment_token(session: Session, *, token_id: str, now: datetime) -> bool:
    """Mark an unused, unexpired token used; False when another call used it first (a
    single conditional UPDATE, so two devices racing for one token cannot both win)."""
    stmt = (
        update(EnrolmentToken)
        .where(
            EnrolmentToken.id == token_id,
            EnrolmentToken.used_at.is_(None),
            EnrolmentToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(session, stmt) == 1


def bind_enrolment_token(session: Session, *, token_id: str, device_id: str) -> None:
    """Record which device a used token provisioned."""
    session.execute(
        update(EnrolmentToken)
        .where(EnrolmentToken.id == token_id)
        .values(device_id=device_id)
        .execution_options(synchronize_session=False)
    )


# ---------------------------------------------------------------------- device keys


def revoke_device_keys(session: Session, *, device_id: str, now: datetime) -> int:
    """Revoke the API keys issued to a device; how many."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.device_id == device_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(session, stmt)


# ---------------------------------------------------------------------- releases and pins


def add_release(
    session: Session,
    *,
    network_id: str,
    store_id: str | None,
    software_version: str,
    models: Sequence[dict[str, str]],
    settings: dict[str, Any],
    rollout_percent: float,
) -> FleetRelease:
    """Store a release; ``models`` and ``settings`` are kept as canonical JSON."""
    release = FleetRelease(
        network_id=network_id,
        store_id=store_id,
        software_version=software_version,
        models=canonical_json(list(models)),
        settings=canonical_json(settings),
        rollout_percent=rollout_percent,
    )
    session.add(release)
    session.flush()
    return release


def get_release(session: Session, *, network_id: str, release_id: str) -> FleetRelease | None:
    """The release if it belongs to ``network_id``."""
    stmt = select(FleetRelease).where(
        FleetRelease.id == release_id, FleetRelease.network_id == network_id
    )
    return session.scalars(stmt).first()


def list_releases(session: Session, *, network_id: str) -> list[FleetRelease]:
    """Every release of the network, newest first."""
    stmt = (
        select(FleetRelease)
        .where(FleetRelease.network_id == network_id)
        .order_by(FleetRelease.created_at.desc())
    )
    return list(session.scalars(stmt))


def set_pin(session: Session, *, device_id: str, release_id: str | None) -> None:
    """Pin a device to a release, or (``None``) release its pin."""
    pin = session.get(DevicePin, device_id)
    if release_id is None:
        if pin is not None:
            session.delete(pin)
    elif pin is None:
        session.add(DevicePin(device_id=device_id, release_id=release_id))
    else:
        pin.release_id = release_id
        pin.pinned_at = utcnow()
    session.flush()


# ---------------------------------------------------------------------- heartbeats


def record_status(session: Session, *, status: Mapping[str, Any]) -> None:
    """Replace the device's last heartbeat with ``status`` (a value for every column of
    :class:`DeviceStatus`): one upsert, as heartbeats are the fleet's most frequent write."""
    upsert(session, DeviceStatus, status, key=("device_id",))


def network_pins(session: Session, *, network_id: str) -> dict[str, str]:
    """Device id → pinned release id, for the network's pinned devices."""
    stmt = (
        select(DevicePin.device_id, DevicePin.release_id)
        .join(Device, Device.id == DevicePin.device_id)
        .where(Device.network_id == network_id)
    )
    return {device_id: release_id for device_id, release_id in session.execute(stmt)}


def device_rows(
    session: Session, *, network_id: str, limit: int, offset: int, device_id: str | None = None
) -> list[tuple[Device, DeviceStatus | None, str | None]]:
    """Devices of a network (oldest first) with their last heartbeat and pinned release."""
    stmt = (
        select(Device, DeviceStatus, DevicePin.release_id)
        .outerjoin(DeviceStatus, DeviceStatus.device_id == Device.id)
        .outerjoin(DevicePin, DevicePin.device_id == Device.id)
        .where(Device.network_id == network_id)
        .order_by(Device.created_at, Device.id)
        .limit(limit)
        .offset(offset)
    )
    if device_id is not None:
        stmt = stmt.where(Device.id == device_id)
    return [(d, s, p) for d, s, p in session.execute(stmt)]


def health_counts(session: Session, *, network_id: str, online_since: datetime) -> dict[str, int]:
    """How many of a network's devices are in each health state (the rule of
    :func:`facekey.flows.fleet.health_of`, counted in the database)."""
    state = case(
        (Device.disabled_at.is_not(None), "disabled"),
        (DeviceStatus.device_id.is_(None), "never_seen"),
        (DeviceStatus.last_seen_at < online_since, "offline"),
        (
            DeviceStatus.camera.not_in(("ok", "none"))
            | (func.coalesce(DeviceStatus.last_error, "") != ""),
            "degraded",
        ),
        else_="ok",
    )
    stmt = (
        select(state, func.count())
        .select_from(Device)
        .outerjoin(DeviceStatus, DeviceStatus.device_id == Device.id)
        .where(Device.network_id == network_id)
        .group_by(state)
    )
    return {str(name): int(count) for name, count in session.execute(stmt)}


def online_by_version(session: Session, *, since: datetime) -> list[tuple[str, str, int]]:
    """(network id, software version, devices) of enabled devices seen since ``since``."""
    stmt = (
        select(DeviceStatus.network_id, DeviceStatus.software_version, func.count())
        .join(Device, Device.id == DeviceStatus.device_id)
        .where(DeviceStatus.last_seen_at >= since, Device.disabled_at.is_(None))
        .group_by(DeviceStatus.network_id, DeviceStatus.software_version)
    )
    return [(n, v, int(c)) for n, v, c in session.execute(stmt)]


def device_counts(session: Session) -> list[tuple[str, bool, int]]:
    """(network id, enabled, devices) of every network."""
    enabled = Device.disabled_at.is_(None)
    stmt = select(Device.network_id, enabled, func.count()).group_by(Device.network_id, enabled)
    return [(n, bool(e), int(c)) for n, e, c in session.execute(stmt)]


# ---------------------------------------------------------------------- screening counts


def record_screening_counts(session: Session, *, row: ScreeningCount) -> None:
    """Store a kiosk's counts for an hour, replacing what it sent for that hour before (the
    kiosk sends the hour's totals, so a retry never counts twice)."""
    existing = session.get(ScreeningCount, (row.device_id, row.hour))
    if existing is None and insert_new(session, row):
        return
    existing = existing or session.get(ScreeningCount, (row.device_id, row.hour))
    if existing is None:  # pragma: no cover - the insert failed: the row is there
        raise RuntimeError("the screening counts cannot be stored")
    existing.screened, existing.referred, existing.failed = row.screened, row.referred, row.failed
    existing.received_at = row.received_at
    session.flush()


def screening_totals(
    session: Session, *, network_id: str, start: datetime, end: datetime
) -> list[tuple[datetime, int, int, int, int]]:
    """Per hour in [start, end): (hour, kiosks, screened, referred, failed) of a network."""
    stmt = (
        select(
            ScreeningCount.hour,
            func.count(),
            func.sum(ScreeningCount.screened),
            func.sum(ScreeningCount.referred),
            func.sum(ScreeningCount.failed),
        )
        .where(
            ScreeningCount.network_id == network_id,
            ScreeningCount.hour >= start,
            ScreeningCount.hour < end,
        )
        .group_by(ScreeningCount.hour)
        .order_by(ScreeningCount.hour)
    )
    return [(h, int(k), int(s), int(r), int(f)) for h, k, s, r, f in session.execute(stmt)]
