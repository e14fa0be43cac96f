"""The fleet: provisioning devices, their heartbeats, desired configuration, health, counts.

* **Provisioning.** An admin issues a one-time enrolment token for a store
  (:func:`issue_enrolment_token`); the device presents it once (:func:`enrol_device`) and
  receives its own id, HMAC secret and terminal API key, shown only then. A token is used once
  and expires; only its hash is stored. A device never receives another device's secret.
* **Heartbeats** (:func:`heartbeat`): a signed call with the software version, the model files
  and their sha256, uptime, last error and camera status; the answer is the device's desired
  release, so a device needs one call a period.
* **Releases** (:func:`create_release`): desired software version, model versions (name,
  version, sha256) and settings, for a network or one store, rolled out to a percentage of the
  devices first. Each device has a stable rollout bucket (a hash of its id), so raising the
  percentage adds devices and never swaps them. A device's release is its pin if it has one;
  otherwise the newest store release whose percentage covers its bucket, else the newest
  network release that does, else none (the software's defaults).
* **Health** (:func:`list_devices`): last seen, what it runs against what it should, and
  ``ok`` / ``degraded`` (camera or error reported) / ``offline`` / ``disabled`` / ``never_seen``.
* **Screening counts** (:func:`record_screening_counts`): a kiosk's totals per UTC hour; the
  only data screening ever sends.

Disabling a device (:func:`facekey.flows.devices.disable_device`) refuses its next signed call.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy.orm import Session

from facekey.errors import AuthenticationFailed, InvalidRequest, NotFound
from facekey.flows.devices import AddedDevice, DeviceIdentity, register_device
from facekey.flows.protection import Vault
from facekey.security.api_keys import Scope, hash_secret, issue_key, verify_secret
from facekey.store import audit, fleet, tenants
from facekey.store.database import Database
from facekey.store.tables import (
    CAMERA_STATUSES,
    Device,
    DeviceStatus,
    FleetRelease,
    ScreeningCount,
    utcnow,
)

#: How often a device beats unless its release says otherwise.
DEFAULT_HEARTBEAT_S: Final = 60
#: A device that has not been heard from for this long is offline.
OFFLINE_AFTER: Final = timedelta(seconds=3 * DEFAULT_HEARTBEAT_S)
TOKEN_TTL: Final = timedelta(hours=24)
MAX_TOKEN_TTL: Final = timedelta(days=30)
MAX_PAGE: Final = 1000
#: How long a worker answers heartbeats from the releases and pins it read last.
RELEASE_CACHE_S: Final = 10.0
_TOKEN = re.compile(r"fe_(?P<id>[A-Za-z0-9_-]{16})_(?P<secret>[A-Za-z0-9_-]{43})")
_TEXT = re.compile(r"[\x20-\x7e]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_ERROR = 500
_MAX_MODELS = 16

Health = Literal["ok", "degraded", "offline", "disabled", "never_seen"]
#: A setting's value (JSON keeps 30 and 30.5 apart; so do the answers).
Number = int | float


@dataclass(frozen=True)
class ModelVersion:
    """A model file a device runs or should run."""

    name: str
    version: str
    sha256: str

    @classmethod
    def parse(cls, value: object) -> ModelVersion:
        """From ``{"name", "version", "sha256"}``; InvalidRequest when malformed."""
        if not isinstance(value, Mapping):
            raise InvalidRequest("a model is an object with name, version and sha256")
        name, version, digest = (value.get(k) for k in ("name", "version", "sha256"))
        for field, text in (("name", name), ("version", version)):
            if not isinstance(text, str) or not _TEXT.fullmatch(text):
                raise InvalidRequest(f"a model's {field} is 1-64 printable ASCII characters")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise InvalidRequest("a model's sha256 is 64 lower-case hex digits")
        return cls(str(name), str(version), digest)


@dataclass(frozen=True)
class HeartbeatReport:
    """What a device reports every period."""

    software_version: str
    models: tuple[ModelVersion, ...]
    uptime_s: int
    camera: str
    last_error: str | None = None
    release_id: str | None = None

    @classmethod
    def parse(cls, body: Mapping[str, JsonValue]) -> HeartbeatReport:
        """From the heartbeat's JSON object; InvalidRequest when a field is malformed."""
        version = body.get("software_version")
        if not isinstance(version, str) or not _TEXT.fullmatch(version):
            raise InvalidRequest("software_version is 1-64 printable ASCII characters")
        uptime = body.get("uptime_s")
        if not isinstance(uptime, int) or isinstance(uptime, bool) or not 0 <= uptime < 2**53:
            raise InvalidRequest("uptime_s is a whole number of seconds")
        camera = body.get("camera")
        if camera not in CAMERA_STATUSES:
            raise InvalidRequest(f"camera is one of {', '.join(CAMERA_STATUSES)}")
        return cls(
            software_version=version,
            models=_models(body.get("models", [])),
            uptime_s=uptime,
            camera=str(camera),
            last_error=_optional_text(body, "last_error", _MAX_ERROR),
            release_id=_optional_text(body, "release_id", 36),
        )


@dataclass(frozen=True)
class Release:
    """A desired configuration as a device receives it."""

    release_id: str
    software_version: str
    models: tuple[ModelVersion, ...]
    settings: dict[str, Number]
    store_id: str | None
    rollout_percent: float

    @classmethod
    def of(cls, row: FleetRelease) -> Release:
        models = tuple(ModelVersion(**m) for m in json.loads(row.models))
        settings = json.loads(row.settings)
        return cls(
            row.id, row.software_version, models, settings, row.store_id, row.rollout_percent
        )

    def view(self) -> ReleaseView:
        """The API's form."""
        return ReleaseView(
            release_id=self.release_id,
            software_version=self.software_version,
            models=list(self.models),
            settings=self.settings,
            store_id=self.store_id,
            rollout_percent=self.rollout_percent,
        )


@dataclass(frozen=True)
class ReleaseBook:
    """A network's releases (newest first) and pins, enough to choose any device's release."""

    releases: tuple[Release, ...]
    pins: Mapping[str, str]
    loaded_at: float = 0.0

    @classmethod
    def load(cls, session: Session, network_id: str) -> ReleaseBook:
        releases = tuple(Release.of(r) for r in fleet.list_releases(session, network_id=network_id))
        pins = fleet.network_pins(session, network_id=network_id)
        return cls(releases, pins, time.monotonic())

    def choose(self, device_id: str, store_id: str) -> Release | None:
        """The device's pin; else the newest store release whose percentage covers its bucket,
        else the newest network release that does; else None."""
        pinned = self.pins.get(device_id)
        if pinned is not None:
            return next((r for r in self.releases if r.release_id == pinned), None)
        bucket = rollout_bucket(device_id)
        for scope in (store_id, None):
            for release in self.releases:
                if release.store_id == scope and bucket < release.rollout_percent:
                    return release
        return None


class ReleaseCache:
    """Release books per network, reloaded after ``ttl_s``: heartbeats, the fleet's most
    frequent call, then read nothing but the device's status row. A new release or pin
    reaches a device at its first heartbeat after ``ttl_s`` on each worker."""

    def __init__(self, ttl_s: float = RELEASE_CACHE_S) -> None:
        self._ttl_s = ttl_s
        self._books: dict[str, ReleaseBook] = {}
        self._lock = threading.Lock()

    def book(self, session: Session, network_id: str) -> ReleaseBook:
        with self._lock:
            book = self._books.get(network_id)
        if book is None or time.monotonic() - book.loaded_at > self._ttl_s:
            book = ReleaseBook.load(session, network_id)
            with self._lock:
                self._books[network_id] = book
        return book


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReleaseView(_Answer):
    """A desired configuration: software, model files and settings, for a network or a
    store, rolled out to a percentage of its devices."""

    release_id: str
    software_version: str
    models: list[ModelVersion]
    settings: dict[str, Number] = Field(description="by name; see SETTING_RANGES")
    store_id: str | None = Field(description="None: the whole network")
    rollout_percent: float


class DesiredConfiguration(_Answer):
    """What a device should run (None: the software's defaults) and how often to beat."""

    release: ReleaseView | None
    heartbeat_s: Number


class EnrolmentToken(_Answer):
    """A one-time device enrolment token (shown only here) for a store, and its expiry."""

    token: str
    token_id: str
    store_id: str
    expires_at: str


class EnrolledDevice(_Answer):
    """A provisioned device: its id, store, HMAC secret and API key (shown only here)."""

    device_id: str
    store_id: str
    merchant_id: str
    secret: str
    network_id: str
    api_key: str
    heartbeat_s: int


class PinnedDevice(_Answer):
    """The release a device is held on (None: it follows the rollouts)."""

    device_id: str
    pinned_release_id: str | None


class DeviceView(_Answer):
    """A device's health, what it runs and what it should run. The fields of its last
    heartbeat are absent until it sends one (last_seen_at is then null)."""

    device_id: str
    name: str | None
    store_id: str
    health: Health
    pinned_release_id: str | None
    desired_release_id: str | None
    last_seen_at: str | None
    software_version: str | None = None
    models: list[ModelVersion] | None = None
    uptime_s: int | None = None
    last_error: str | None = None
    camera: str | None = None
    release_id: str | None = None


class ScreeningStored(_Answer):
    """A kiosk's hourly totals, stored."""

    hour: str
    stored: bool


class ScreeningHour(_Answer):
    """One hour's totals over the network's kiosks."""

    hour: str
    kiosks: int
    screened: int
    referred: int
    failed: int


class ScreeningDay(_Answer):
    """A network's screening totals per hour of a UTC day (hours without counts left out)."""

    day: str
    hours: list[ScreeningHour]


@dataclass(frozen=True)
class FleetGauges:
    """For the metrics: (network, version, devices) online, (network, enabled, devices)."""

    online: list[tuple[str, str, int]]
    registered: list[tuple[str, bool, int]]


def _models(value: object) -> tuple[ModelVersion, ...]:
    if not isinstance(value, list) or len(value) > _MAX_MODELS:
        raise InvalidRequest(f"models is a list of at most {_MAX_MODELS} models")
    return tuple(ModelVersion.parse(m) for m in value)


def _optional_text(body: Mapping[str, JsonValue], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidRequest(f"{name} is text of at most {limit} characters (and no NUL)")
    return value or None


# ---------------------------------------------------------------------- provisioning


def issue_enrolment_token(
    database: Database,
    network_id: str,
    store_id: str,
    *,
    name: str | None = None,
    ttl: timedelta = TOKEN_TTL,
) -> EnrolmentToken:
    """A one-time token that provisions one device into ``store_id``; shown only here."""
    if not timedelta(minutes=1) <= ttl <= MAX_TOKEN_TTL:
        raise InvalidRequest("an enrolment token lives between one minute and 30 days")
    token_id, secret = secrets.token_urlsafe(12), secrets.token_urlsafe(32)
    expires_at = utcnow() + ttl
    with database.session() as session:
        _require_store(session, network_id, store_id)
        fleet.add_enrolment_token(
            session,
            token_id=token_id,
            network_id=network_id,
            store_id=store_id,
            secret_hash=hash_secret(secret),
            expires_at=expires_at,
            name=name,
        )
    return EnrolmentToken(
        token=f"fe_{token_id}_{secret}",
        token_id=token_id,
        store_id=store_id,
        expires_at=expires_at.isoformat(),
    )


def enrol_device(database: Database, vault: Vault, token: str) -> EnrolledDevice:
    """Provision a device from a one-time token: its id, secret and API key, shown once."""
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        raise AuthenticationFailed("malformed enrolment token; expected fe_<id>_<secret>")
    now = utcnow()
    with database.session() as session:
        row = fleet.get_enrolment_token(session, token_id=match["id"])
        if row is None or not verify_secret(match["secret"], row.secret_hash):
            raise AuthenticationFailed("the enrolment token is not valid")
        if not fleet.claim_enrolment_token(session, token_id=row.id, now=now):
            raise AuthenticationFailed("the enrolment token was used already or has expired")
        device = register_device(
            session, vault, network_id=row.network_id, store_id=row.store_id, name=row.name
        )
        fleet.bind_enrolment_token(session, token_id=row.id, device_id=device.device_id)
        key = issue_device_key(session, row.network_id, device.device_id)
        _audit(session, row.network_id, "device.enrol", {"device_id": device.device_id})
    return _enrolled(device, row.network_id, key)


def _enrolled(device: AddedDevice, network_id: str, key: str) -> EnrolledDevice:
    return EnrolledDevice(
        device_id=device.device_id,
        store_id=device.store_id,
        merchant_id=device.merchant_id,
        secret=device.secret,
        network_id=network_id,
        api_key=key,
        heartbeat_s=DEFAULT_HEARTBEAT_S,
    )


def issue_device_key(session: Session, network_id: str, device_id: str) -> str:
    """A terminal key of the device's own (its token), revoked when the device is disabled."""
    issued = issue_key(Scope.TERMINAL)
    tenants.add_api_key(
        session,
        key_id=issued.key_id,
        network_id=network_id,
        scope=Scope.TERMINAL.value,
        secret_hash=issued.secret_hash,
        label=f"device {device_id}",
        device_id=device_id,
    )
    return issued.token


def _audit(session: Session, network_id: str, action: str, details: dict[str, JsonValue]) -> None:
    audit.append_event(
        session,
        network_id=network_id,
        actor=audit.SYSTEM_ACTOR,
        action=action,
        subject_pseudonym=None,
        outcome="done",
        details=details,
    )


# ---------------------------------------------------------------------- releases


def rollout_bucket(device_id: str) -> float:
    """The device's place in every rollout, in [0, 100): the same for every release."""
    digest = hashlib.sha256(f"rollout:{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def create_release(
    database: Database,
    network_id: str,
    *,
    software_version: str,
    models: Sequence[object] = (),
    settings: Mapping[str, JsonValue] | None = None,
    rollout_percent: float = 100.0,
    store_id: str | None = None,
) -> ReleaseView:
    """A desired configuration for the network's (or one store's) devices."""
    if not _TEXT.fullmatch(software_version):
        raise InvalidRequest("software_version is 1-64 printable ASCII characters")
    parsed = _models(list(models))
    chosen = _settings(settings or {})
    _check_percent(rollout_percent)
    with database.session() as session:
        if store_id is not None:
            _require_store(session, network_id, store_id)
        row = fleet.add_release(
            session,
            network_id=network_id,
            store_id=store_id,
            software_version=software_version,
            models=[asdict(m) for m in parsed],
            settings=chosen,
            rollout_percent=rollout_percent,
        )
        _audit(session, network_id, "release.create", {"release_id": row.id})
        return Release.of(row).view()


def set_rollout(
    database: Database, network_id: str, release_id: str, rollout_percent: float
) -> ReleaseView:
    """Widen (or narrow) a release to ``rollout_percent`` of its devices."""
    _check_percent(rollout_percent)
    with database.session() as session:
        row = fleet.get_release(session, network_id=network_id, release_id=release_id)
        if row is None:
            raise NotFound(f"no release {release_id} in network {network_id}")
        row.rollout_percent = rollout_percent
        _audit(
            session,
            network_id,
            "release.rollout",
            {"release_id": row.id, "percent": rollout_percent},
        )
        return Release.of(row).view()


def pin_device(
    database: Database, network_id: str, device_id: str, release_id: str | None
) -> PinnedDevice:
    """Hold a device on a release whatever the rollouts say (``None``: release the pin)."""
    with database.session() as session:
        _network_device(session, network_id, device_id)
        if (
            release_id is not None
            and fleet.get_release(session, network_id=network_id, release_id=release_id) is None
        ):
            raise NotFound(f"no release {release_id} in network {network_id}")
        fleet.set_pin(session, device_id=device_id, release_id=release_id)
    return PinnedDevice(device_id=device_id, pinned_release_id=release_id)


def _check_percent(value: float) -> None:
    if not 0.0 <= value <= 100.0:
        raise InvalidRequest("rollout_percent is between 0 and 100")


#: Device settings a release may carry, with their allowed ranges.
SETTING_RANGES: Final[dict[str, tuple[float, float]]] = {
    "heartbeat_s": (10, 3600),
    "screening_threshold_c": (35.0, 40.0),
    "screening_offset_c": (-5.0, 5.0),
    "burst_frames": (3, 20),
}


def _settings(settings: Mapping[str, JsonValue]) -> dict[str, Number]:
    chosen: dict[str, Number] = {}
    for name, value in settings.items():
        if name not in SETTING_RANGES:
            raise InvalidRequest(f"unknown setting {name!r}; known: {', '.join(SETTING_RANGES)}")
        low, high = SETTING_RANGES[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise InvalidRequest(f"setting {name} is a number from {low} to {high}")
        chosen[name] = value
    return chosen


# ---------------------------------------------------------------------- heartbeats


def heartbeat(
    database: Database,
    device: DeviceIdentity,
    report: HeartbeatReport,
    releases: ReleaseCache | None = None,
) -> DesiredConfiguration:
    """Record a device's heartbeat; the answer is its desired release and period."""
    with database.session() as session:
        fleet.record_status(session, status=_status_row(device, report, utcnow()))
        book = (releases or ReleaseCache(0.0)).book(session, device.network_id)
    return _desired(book.choose(device.device_id, device.store_id))


def desired_configuration(
    database: Database, device: DeviceIdentity, releases: ReleaseCache | None = None
) -> DesiredConfiguration:
    """A device's desired release and period, without a heartbeat."""
    with database.read_session() as session:
        book = (releases or ReleaseCache(0.0)).book(session, device.network_id)
    return _desired(book.choose(device.device_id, device.store_id))


def _desired(release: Release | None) -> DesiredConfiguration:
    period = None if release is None else release.settings.get("heartbeat_s")
    view = None if release is None else release.view()
    return DesiredConfiguration(release=view, heartbeat_s=period or DEFAULT_HEARTBEAT_S)


def _status_row(device: DeviceIdentity, report: HeartbeatReport, now: datetime) -> dict[str, Any]:
    """The values of the device's :class:`DeviceStatus` row after this heartbeat."""
    return {
        "device_id": device.device_id,
        "network_id": device.network_id,
        "last_seen_at": now,
        "software_version": report.software_version,
        "models": audit.canonical_json([asdict(m) for m in report.models]),
        "uptime_s": report.uptime_s,
        "last_error": report.last_error,
        "camera": report.camera,
        "release_id": report.release_id,
    }


# ---------------------------------------------------------------------- health


def list_devices(
    database: Database,
    network_id: str,
    *,
    limit: int = 100,
    offset: int = 0,
    device_id: str | None = None,
) -> list[DeviceView]:
    """Devices with last-seen time, health, what they run and what they should run."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidRequest(f"limit is 1 to {MAX_PAGE}, offset not negative")
    now = utcnow()
    with database.read_session() as session:
        rows = fleet.device_rows(
            session, network_id=network_id, limit=limit, offset=offset, device_id=device_id
        )
        book = ReleaseBook.load(session, network_id)
    return [
        _device_view(device, status, pin, book.choose(device.id, device.store_id), now)
        for device, status, pin in rows
    ]


def device_health(database: Database, network_id: str, device_id: str) -> DeviceView:
    """One device's view (see :func:`list_devices`)."""
    found = list_devices(database, network_id, limit=1, device_id=device_id)
    if not found:
        raise NotFound(f"no device {device_id} in network {network_id}")
    return found[0]


def health_of(device: Device, status: DeviceStatus | None, now: datetime) -> Health:
    """The device's health from its state and last heartbeat."""
    if not device.enabled:
        return "disabled"
    if status is None:
        return "never_seen"
    if now - status.last_seen_at > OFFLINE_AFTER:
        return "offline"
    return "degraded" if status.camera not in ("ok", "none") or status.last_error else "ok"


def _device_view(
    device: Device,
    status: DeviceStatus | None,
    pin: str | None,
    desired: Release | None,
    now: datetime,
) -> DeviceView:
    reported: dict[str, Any] = (
        {}
        if status is None
        else {
            "last_seen_at": status.last_seen_at.isoformat(),
            "software_version": status.software_version,
            "models": [ModelVersion(**m) for m in json.loads(status.models)],
            "uptime_s": status.uptime_s,
            "last_error": status.last_error,
            "camera": status.camera,
            "release_id": status.release_id,
        }
    )
    fields: dict[str, Any] = {
        "device_id": device.id,
        "name": device.name,
        "store_id": device.store_id,
        "health": health_of(device, status, now),
        "pinned_release_id": pin,
        "desired_release_id": None if desired is None else desired.release_id,
        "last_seen_at": None,
    }
    return DeviceView(**(fields | reported))


def fleet_gauges(database: Database, now: datetime | None = None) -> FleetGauges:
    """Devices online by network and software version, and devices by network and state."""
    since = (now or datetime.now(UTC)) - OFFLINE_AFTER
    with database.read_session() as session:
        online = fleet.online_by_version(session, since=since)
        counts = fleet.device_counts(session)
    return FleetGauges(online, counts)


# ---------------------------------------------------------------------- screening counts


@dataclass(frozen=True)
class ScreeningCounts:
    """A kiosk's totals for one UTC hour."""

    hour: datetime
    screened: int
    referred: int
    failed: int

    @classmethod
    def parse(cls, body: Mapping[str, JsonValue]) -> ScreeningCounts:
        """From ``{"hour": ISO time on the hour, "screened", "referred", "failed"}``."""
        hour = _hour(body.get("hour"))
        numbers = [body.get(k) for k in ("screened", "referred", "failed")]
        if any(
            not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 1_000_000
            for n in numbers
        ):
            raise InvalidRequest("screened, referred and failed are counts from 0 to 1,000,000")
        screened, referred, failed = (int(n) for n in numbers)  # type: ignore[arg-type]
        if referred > screened:
            raise InvalidRequest("referred cannot exceed screened")
        return cls(hour, screened, referred, failed)


def _hour(value: object) -> datetime:
    try:
        hour = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidRequest("hour is an ISO 8601 time with its offset, on the hour") from exc
    if hour.tzinfo is None or hour.minute or hour.second or hour.microsecond:
        raise InvalidRequest("hour is an ISO 8601 time with its offset, on the hour")
    hour = hour.astimezone(UTC)
    if hour > utcnow() + timedelta(hours=1):
        raise InvalidRequest("hour is in the future")
    return hour


def record_screening_counts(
    database: Database, device: DeviceIdentity, counts: ScreeningCounts
) -> ScreeningStored:
    """Store a kiosk's hourly totals (its later report of the same hour replaces them)."""
    row = ScreeningCount(
        device_id=device.device_id,
        hour=counts.hour,
        network_id=device.network_id,
        screened=counts.screened,
        referred=counts.referred,
        failed=counts.failed,
        received_at=utcnow(),
    )
    with database.session() as session:
        fleet.record_screening_counts(session, row=row)
    return ScreeningStored(hour=counts.hour.isoformat(), stored=True)


def screening_day(database: Database, network_id: str, day: str) -> ScreeningDay:
    """A network's screening totals per hour of a UTC day."""
    try:
        start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
        end = start + timedelta(days=1)  # 9999-12-31 has no day after it
    except (ValueError, OverflowError) as exc:
        raise InvalidRequest("day must be a date written YYYY-MM-DD, before 9999-12-31") from exc
    with database.read_session() as session:
        rows = fleet.screening_totals(session, network_id=network_id, start=start, end=end)
    hours = [
        ScreeningHour(hour=h.isoformat(), kiosks=k, screened=s, referred=r, failed=f)
        for h, k, s, r, f in rows
    ]
    return ScreeningDay(day=day, hours=hours)


def _require_store(session: Session, network_id: str, store_id: str) -> None:
    if tenants.get_store(session, network_id=network_id, store_id=store_id) is None:
        raise NotFound(f"no store {store_id} in network {network_id}")


def _network_device(session: Session, network_id: str, device_id: str) -> Device:
    device = tenants.get_device(session, device_id=device_id)
    if device is None or device.network_id != network_id:
        raise NotFound(f"no device {device_id} in network {network_id}")
    return device
