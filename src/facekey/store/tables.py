"""The database schema, portable between SQLite and PostgreSQL.

Identifiers are UUID strings (``String(36)``) except the integer keys that must be dense and
monotone: ``templates.id`` (the gallery index's id), ``gallery_changes.sequence`` and
``audit_events.sequence``. Those tables use ``sqlite_autoincrement`` so that SQLite never reuses
the id of a deleted row. Timestamps are timezone-aware UTC on every backend (:class:`UTCDateTime`).
Columns named ``sealed_*`` / ``wrapped_*`` hold ciphertext produced by :mod:`facekey.security`.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SUBJECT_STATUSES = ("active", "erased")
TEMPLATE_SOURCES = ("enrolment", "added", "liveness", "retemplated", "retained")
CHANGE_KINDS = ("add", "remove_subject", "remove_template")
AUTHORIZATION_STATUSES = ("final", "pending_step_up")
AUTHORIZATION_DECISIONS = ("approved", "step_up", "declined")
FAILURE_KINDS = (
    "subject",
    "device",
    "liveness-subject",
    "liveness-device",
    "web-sign-in-address",
    "web-check-address",
)
LIVENESS_MODES = ("challenge", "passive")
LIVENESS_STATUSES = ("open", "live", "spoof", "inconclusive", "expired")
CAMERA_STATUSES = ("ok", "missing", "error", "none")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new random UUID string."""
    return str(uuid.uuid4())


def new_pseudonym() -> str:
    """A new random public pseudonym: 16 hex digits."""
    return secrets.token_hex(8)


def _in_check(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC that always comes back timezone-aware (UTC), SQLite included.

    Naive datetimes are refused on the way in: ambiguity about time zones is a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; SQLite stores the naive UTC wall time."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column; use an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"unexpected timestamp value {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base holding :data:`metadata`."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata


class Network(Base):
    """A merchant network: the tenant every other row belongs to."""

    __tablename__ = "networks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    transform_version: Mapped[int] = mapped_column(Integer, default=1)
    #: The per-network secret of the template transform, wrapped by the key-encryption key.
    wrapped_transform_secret: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(100))
    #: The secret behind phone buckets and customer ids, once the transform has been renewed
    #: (until then the transform's first secret serves both).
    wrapped_pseudonym_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The recognition engine (its entry-point name) the network's galleries use.
    engine: Mapped[str] = mapped_column(String(100))
    #: The engine the network is moving to; both galleries are searched until it ends.
    migration_engine: Mapped[str | None] = mapped_column(String(100))
    #: Whether enrolment images are kept, sealed, for re-templating with another engine
    #: (only for subjects who consent to it).
    retain_images: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def engines(self) -> tuple[str, ...]:
        """The engines whose galleries are searched: the network's, then the one it moves to."""
        return (
            (self.engine,)
            if self.migration_engine is None
            else (
                self.engine,
                self.migration_engine,
            )
        )


class Merchant(Base):
    """A merchant of a network."""

    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Store(Base):
    """A store (physical shop) of a merchant."""

    __tablename__ = "stores"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))


class Device(Base):
    """A terminal or kiosk; its HMAC secret is kept wrapped by the key-encryption key."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    wrapped_secret: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    name: Mapped[str | None] = mapped_column(String(200))
    #: When the device was disabled, for good; NULL while it is enabled.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


class ApiKey(Base):
    """An API key: only a hash of its secret is stored; one scope, one network."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    label: Mapped[str | None] = mapped_column(String(200))
    #: The device a key was issued to at enrolment (revoked with it); NULL for network keys.
    device_id: Mapped[str | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )


class Subject(Base):
    """A consumer who opted in. Personal columns are sealed and become NULL on erasure."""

    __tablename__ = "subjects"
    __table_args__ = (
        UniqueConstraint("network_id", "external_ref"),
        Index(None, "network_id", "phone_bucket"),
        CheckConstraint(_in_check("status", SUBJECT_STATUSES), name="status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    #: The public pseudonym written to audit events instead of the id.
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True, default=new_pseudonym)
    external_ref: Mapped[str | None] = mapped_column(String(200))
    #: "active", or "erased" (when is the erasure receipt's ``erased_at``).
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The subject's data key wrapped by the key-encryption key; NULL once erased.
    wrapped_data_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    kek_id: Mapped[str | None] = mapped_column(String(100))
    sealed_phone: Mapped[bytes | None] = mapped_column(LargeBinary)
    sealed_payment_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: A keyed hash of the phone's last 4 digits, for the checkout step-up.
    phone_bucket: Mapped[str | None] = mapped_column(String(128))
    #: A salted hash of the checkout PIN (computed by the caller); NULL once erased.
    pin_hash: Mapped[str | None] = mapped_column(String(200))


class Consent(Base):
    """One grant of one purpose; withdrawing sets ``withdrawn_at``, re-granting adds a row."""

    __tablename__ = "consents"
    __table_args__ = (Index(None, "subject_id", "purpose"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(64))
    terms_version: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Template(Base):
    """A protected (transformed, then sealed) face template; ``id`` is the gallery index's id."""

    __tablename__ = "templates"
    __table_args__ = (
        Index(None, "network_id", "engine_id", "engine_version"),
        CheckConstraint(_in_check("source", TEMPLATE_SOURCES), name="source"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"))
    engine_id: Mapped[str] = mapped_column(String(100))
    engine_version: Mapped[str] = mapped_column(String(50))
    sealed_vector: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def engine_key(self) -> str:
        """``"<engine_id>:<engine_version>"``, the key of the gallery this template belongs to."""
        return engine_key(self.engine_id, self.engine_version)


class RetainedImage(Base):
    """A sealed enrolment image, kept only when the operator enables retention."""

    __tablename__ = "retained_images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    subject_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    sealed_image: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GalleryChange(Base):
    """One entry of the change log that gallery indexes refresh from."""

    __tablename__ = "gallery_changes"
    __table_args__ = (
        Index(None, "network_id", "engine_key", "sequence"),
        CheckConstraint(_in_check("kind", CHANGE_KINDS), name="kind"),
        {"sqlite_autoincrement": True},
    )

    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"))
    engine_key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(24))
    subject_id: Mapped[str] = mapped_column(String(36))
    template_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEvent(Base):
    """An append-only audit event, chained per network by ``prev_hash`` → ``hash``."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "network_id", "sequence"),
        Index(None, "network_id", "subject_pseudonym"),
        {"sqlite_autoincrement": True},
    )

    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The API key id that acted, or ``"system"``.
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject_pseudonym: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    #: Canonical JSON (sorted keys, compact separators).
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ErasureReceipt(Base):
    """Proof of an erasure: holds nothing personal beyond the subject's pseudonym."""

    __tablename__ = "erasure_receipts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    subject_pseudonym: Mapped[str] = mapped_column(String(32), index=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())
    templates_erased: Mapped[int] = mapped_column(Integer)
    receipt_hash: Mapped[str] = mapped_column(String(64))
    audit_sequence: Mapped[int] = mapped_column(Integer)


class RequestNonce(Base):
    """A nonce a terminal signed a request with, kept for the replay window."""

    __tablename__ = "request_nonces"

    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    nonce: Mapped[str] = mapped_column(String(100), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Authorization(Base):
    """One checkout decision: the ledger row of an idempotent terminal request.

    It holds only pseudonymous fields: ``subject_id`` points at a subject row that survives
    erasure as a stub, ``evidence`` is canonical JSON of scores and policy inputs, never
    biometric data.
    """

    __tablename__ = "authorizations"
    __table_args__ = (
        UniqueConstraint("device_id", "idempotency_key"),
        Index(None, "merchant_id", "created_at"),
        Index(None, "subject_id", "created_at"),
        Index(None, "network_id", "created_at"),
        Index(None, "device_id", "created_at"),
        CheckConstraint(_in_check("status", AUTHORIZATION_STATUSES), name="status"),
        CheckConstraint(_in_check("decision", AUTHORIZATION_DECISIONS), name="decision"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    #: sha256 (hex) of the canonical request, to detect a key reused for another request.
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(100))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    subject_id: Mapped[str | None] = mapped_column(ForeignKey("subjects.id"))
    #: The per-merchant pseudonymous customer id given to the merchant.
    customer_pseudonym: Mapped[str | None] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(50))
    evidence: Mapped[str] = mapped_column(Text)
    step_up_method: Mapped[str | None] = mapped_column(String(20))
    step_up_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: When the decision became final; NULL while a step-up is pending.
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    latency_ms: Mapped[float | None] = mapped_column(Float)


class FailureCounter(Base):
    """Consecutive failures of one subject or device under a lockout rule, and its lockout."""

    __tablename__ = "failure_counters"
    __table_args__ = (CheckConstraint(_in_check("kind", FAILURE_KINDS), name="kind"),)

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    consecutive: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProbeFingerprint(Base):
    """The sha256 of a recent probe image's bytes, to decline exact replays."""

    __tablename__ = "probe_fingerprints"

    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(36))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class MerchantExclusion(Base):
    """A merchant where the subject does not want to pay by face."""

    __tablename__ = "merchant_exclusions"

    subject_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True
    )
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Preference(Base):
    """A subject's sealed personalization preferences at one merchant."""

    __tablename__ = "preferences"

    subject_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True
    )
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True
    )
    sealed_payload: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LivenessSession(Base):
    """A liveness session: its challenges, its result and, when live, its best frame's template.

    ``result_evidence`` is canonical JSON of numbers only (scores, counts, angles), never
    biometric data. ``sealed_best_template`` is the best frame's template, transformed and
    sealed like stored templates (:func:`facekey.flows.protection.seal_session_vector`); it is
    cleared when the session is used or expires. ``finished_at`` is when the result was decided.
    """

    __tablename__ = "liveness_sessions"
    __table_args__ = (
        Index(None, "device_id", "finished_at"),
        Index(None, "subject_id", "finished_at"),
        Index(None, "status", "expires_at"),
        CheckConstraint(_in_check("mode", LIVENESS_MODES), name="mode"),
        CheckConstraint(_in_check("status", LIVENESS_STATUSES), name="status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[str] = mapped_column(String(64))
    #: JSON list of challenge names, in the order they must be performed.
    challenges: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="open")
    result_evidence: Mapped[str | None] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    subject_id: Mapped[str | None] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"))
    sealed_best_template: Mapped[bytes | None] = mapped_column(LargeBinary)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EnrolmentToken(Base):
    """A one-time token that provisions one device into a store (only its hash is kept)."""

    __tablename__ = "enrolment_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(255))
    #: The name the enrolled device gets.
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))


class FleetRelease(Base):
    """A desired configuration (software, model versions, settings) for a network or a store,
    rolled out to ``rollout_percent`` of its devices (the same devices first: a stable hash)."""

    __tablename__ = "fleet_releases"
    __table_args__ = (Index(None, "network_id", "store_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    #: NULL: every store of the network.
    store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    software_version: Mapped[str] = mapped_column(String(64))
    #: Canonical JSON list of ``{"name", "version", "sha256"}``.
    models: Mapped[str] = mapped_column(Text)
    #: Canonical JSON object of device settings (heartbeat period, screening threshold, ...).
    settings: Mapped[str] = mapped_column(Text)
    rollout_percent: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DevicePin(Base):
    """A device held on one release whatever the rollouts say."""

    __tablename__ = "device_pins"

    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    release_id: Mapped[str] = mapped_column(ForeignKey("fleet_releases.id", ondelete="CASCADE"))
    pinned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeviceStatus(Base):
    """A device's last heartbeat: what it runs and how it is (one row per device, replaced)."""

    __tablename__ = "device_status"
    __table_args__ = (
        Index(None, "network_id", "last_seen_at"),
        CheckConstraint(_in_check("camera", CAMERA_STATUSES), name="camera"),
    )

    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    software_version: Mapped[str] = mapped_column(String(64))
    #: Canonical JSON list of ``{"name", "version", "sha256"}`` as the device reports them.
    models: Mapped[str] = mapped_column(Text)
    uptime_s: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    camera: Mapped[str] = mapped_column(String(16))
    #: The release the device says it applied (NULL: none yet).
    release_id: Mapped[str | None] = mapped_column(String(36))


class ScreeningCount(Base):
    """A kiosk's aggregate screening counts for one UTC hour: the only data screening sends."""

    __tablename__ = "screening_counts"
    __table_args__ = (Index(None, "network_id", "hour"),)

    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    screened: Mapped[int] = mapped_column(Integer)
    referred: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def engine_key(engine_id: str, engine_version: str) -> str:
    """The gallery key of an engine: ``"<engine_id>:<engine_version>"``."""
    return f"{engine_id}:{engine_version}"


WEB_SESSION_KINDS = ("enrol", "portal", "operator")
WEB_CODE_KINDS = ("enrol_link", "portal_code")


class WebSession(Base):
    """A browser of the web pages (:mod:`facekey.web`): only the sha256 of its cookie's token
    is kept (the token itself lives in the browser's HttpOnly cookie). ``key_id`` is the API
    key an operator signed in with, or that issued the enrolment link; ``subject_id`` is the
    customer a privacy-portal session proved to be. ``state`` is JSON of ids and receipts,
    never biometric data."""

    __tablename__ = "web_sessions"
    __table_args__ = (CheckConstraint(_in_check("kind", WEB_SESSION_KINDS), name="kind"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    network_id: Mapped[str | None] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    key_id: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class WebCode(Base):
    """A code an operator hands out: an enrolment link, or a one-time code to the privacy
    portal for one subject. Only its sha256 is kept; a reusable enrolment link serves a kiosk
    until it expires."""

    __tablename__ = "web_codes"
    __table_args__ = (CheckConstraint(_in_check("kind", WEB_CODE_KINDS), name="kind"),)

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    key_id: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"))
    reusable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
