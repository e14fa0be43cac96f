"""What the operator console shows of the admin's network, read only: merchants, stores and
devices, subjects and templates, the audit chain's verification, the engine's calibration
and DET curve, and the risk settings with what each one means."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import select

from facekey.calibration import CalibrationTable, EngineCalibration
from facekey.engines.base import EngineInfo
from facekey.flows import risk
from facekey.flows.auth import Principal
from facekey.flows.fleet import OFFLINE_AFTER, health_of
from facekey.flows.platform import Platform
from facekey.flows.search import network_of
from facekey.security.api_keys import Scope
from facekey.store import audit, fleet, subjects, tenants
from facekey.store.audit import ChainReport
from facekey.store.tables import AuditEvent, Merchant, Network, Store

#: The FMR operating points the calibration table is shown at.
SHOWN_FMRS: Final = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
RECENT_EVENTS: Final = 25
#: Devices listed on one page of the console (a fleet has thousands; the counts cover them all).
DEVICES_PER_PAGE: Final = 50


@dataclass(frozen=True)
class DeviceRow:
    id: str
    name: str | None
    store: str
    enabled: bool
    created_at: datetime
    #: When the device last sent a heartbeat (None: never).
    last_seen: datetime | None
    #: ok, degraded, offline, disabled or never_seen (:func:`facekey.flows.fleet.health_of`).
    health: str


@dataclass(frozen=True)
class StoreRow:
    id: str
    name: str
    merchant: str


@dataclass(frozen=True)
class Overview:
    """The network, its merchants, stores and devices, and its enrolled subjects."""

    network: Network
    merchants: list[Merchant]
    stores: list[StoreRow]
    #: One page of devices, oldest first, from ``device_offset``.
    devices: list[DeviceRow]
    device_offset: int
    #: Every device of the network by health state.
    device_health: dict[str, int]
    active_subjects: int
    templates: dict[str, tuple[int, int]]


def overview(platform: Platform, principal: Principal, device_offset: int = 0) -> Overview:
    principal.require(Scope.ADMIN)
    device_offset = max(0, device_offset)
    now = datetime.now(UTC)
    network = network_of(platform, principal.network_id)
    with platform.database.read_session() as session:
        merchants = tenants.list_merchants(session, network_id=network.id)
        names = {m.id: m.name for m in merchants}
        stores = list(
            session.scalars(
                select(Store)
                .join(Merchant, Merchant.id == Store.merchant_id)
                .where(Merchant.network_id == network.id)
                .order_by(Merchant.name, Store.name)
            )
        )
        store_rows = [StoreRow(s.id, s.name, names[s.merchant_id]) for s in stores]
        store_names = {s.id: s.name for s in stores}
        rows = fleet.device_rows(
            session, network_id=network.id, limit=DEVICES_PER_PAGE, offset=device_offset
        )
        devices = [
            DeviceRow(
                d.id,
                d.name,
                store_names.get(d.store_id, d.store_id),
                d.enabled,
                d.created_at,
                status.last_seen_at if status is not None else None,
                health_of(d, status, now),
            )
            for d, status, _ in rows
        ]
        health = fleet.health_counts(
            session, network_id=network.id, online_since=now - OFFLINE_AFTER
        )
        session.expunge_all()
        return Overview(
            network,
            merchants,
            store_rows,
            devices,
            device_offset,
            health,
            subjects.count_active(session, network_id=network.id),
            subjects.engine_counts(session, network_id=network.id),
        )


def merchant_names(platform: Platform, principal: Principal) -> dict[str, str]:
    principal.require(Scope.ADMIN)
    with platform.database.read_session() as session:
        return {
            m.id: m.name for m in tenants.list_merchants(session, network_id=principal.network_id)
        }


@dataclass(frozen=True)
class AuditLine:
    """One audit event as the console lists it (the subject by pseudonym)."""

    sequence: int
    occurred_at: datetime
    actor: str
    action: str
    subject: str | None
    outcome: str


@dataclass(frozen=True)
class AuditView:
    report: ChainReport
    recent: list[AuditLine]


def audit_view(platform: Platform, principal: Principal) -> AuditView:
    """The chain of the network verified from its first event, and its latest events."""
    principal.require(Scope.ADMIN)
    with platform.database.read_session() as session:
        report = audit.verify_chain(session, network_id=principal.network_id)
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.network_id == principal.network_id)
            .order_by(AuditEvent.sequence.desc())
            .limit(RECENT_EVENTS)
        )
        recent = [
            AuditLine(e.sequence, e.occurred_at, e.actor, e.action, e.subject_pseudonym, e.outcome)
            for e in events
        ]
    return AuditView(report, recent)


@dataclass(frozen=True)
class OperatingPoint:
    """A calibrated threshold: at ``threshold`` the FMR is at most ``fmr`` and FNMR is
    ``fnmr``."""

    target: float
    threshold: float
    fmr: float
    fnmr: float


@dataclass(frozen=True)
class TableView:
    table: CalibrationTable
    points: list[OperatingPoint]


@dataclass(frozen=True)
class EngineView:
    """One engine of the network, and its calibration tables by condition."""

    info: EngineInfo
    role: str
    tables: list[TableView]
    #: The largest gallery a face-only checkout can be approved in (docs/risk-policy.md).
    max_face_only_gallery: int | None


def engine_views(platform: Platform, principal: Principal) -> list[EngineView]:
    """The network's engine (and the one it migrates to) with their calibration."""
    principal.require(Scope.ADMIN)
    network = network_of(platform, principal.network_id)
    views = []
    for role, name in zip(("active", "migrating to"), network.engines, strict=False):
        info = platform.readers.get(name).info
        calibration = platform.calibration(info)
        views.append(_engine_view(platform, info, role, calibration))
    return views


def _engine_view(
    platform: Platform, info: EngineInfo, role: str, calibration: EngineCalibration | None
) -> EngineView:
    if calibration is None:
        return EngineView(info, role, [], None)
    tables = [TableView(t, operating_points(t)) for t in calibration.tables.values()]
    target = platform.risk_config.false_charge_target
    return EngineView(info, role, tables, risk.max_face_only_gallery(calibration.unmasked, target))


def operating_points(table: CalibrationTable) -> list[OperatingPoint]:
    """The table at :data:`SHOWN_FMRS` it can vouch for: the lowest threshold whose FMR is
    within each target, and the FNMR there."""
    points = []
    for target in SHOWN_FMRS:
        found = next((p for p in table.points if p[1] <= target), None)
        if found is not None:
            points.append(OperatingPoint(target, found[0], found[1], found[2]))
    return points


def det_curves(platform: Platform, principal: Principal) -> dict[str, list[tuple[float, float]]]:
    """(FMR, FNMR) of each calibration table of the network's engines, by label."""
    curves = {}
    for view in engine_views(platform, principal):
        for shown in view.tables:
            label = f"{view.info.id} {view.info.version} ({shown.table.condition})"
            curves[label] = [(fmr, fnmr) for _, fmr, fnmr in shown.table.points]
    return curves


@dataclass(frozen=True)
class Setting:
    name: str
    value: str
    meaning: str


def risk_settings(platform: Platform, principal: Principal) -> list[Setting]:
    """The decision settings in force, each with what it means, read only."""
    principal.require(Scope.ADMIN)
    config, settings = platform.risk_config, platform.settings
    minor = config.currency or "minor units"
    return [
        Setting(
            "false_charge_target",
            f"{config.false_charge_target:g}",
            "Face-only checkout: the largest accepted chance that the best match is a stranger "
            "(N × FMR of the best score, N the templates searched).",
        ),
        Setting(
            "step_up_false_charge_target",
            f"{config.step_up_false_charge_target:g}",
            "After a step-up (phone's last 4 digits or PIN), the same bound within the smaller "
            "group searched; also used to sign customers in to the privacy portal.",
        ),
        Setting(
            "margin_fmr_ratio",
            f"{config.margin_fmr_ratio:g}",
            "The runner-up's score must be at least this many times more common among "
            "strangers than the best; otherwise the match is ambiguous.",
        ),
        Setting(
            "min_match_fmr",
            f"{config.min_match_fmr:g}",
            "A best score rarer than this among strangers is worth a step-up; above it the "
            "face is 'no match'.",
        ),
        Setting(
            "step_up_amount_minor",
            f"{config.step_up_amount_minor} {minor}",
            "Amounts above this always ask for a step-up.",
        ),
        Setting(
            "max_amount_minor",
            f"{config.max_amount_minor} {minor}",
            "Amounts above this are declined.",
        ),
        Setting(
            "velocity",
            f"{config.max_subject_approvals} per customer, {config.max_device_approvals} per "
            f"terminal, per {config.velocity_window_s} s",
            "More approvals than this within the window are declined.",
        ),
        Setting(
            "step_up_methods",
            ", ".join(config.step_up_methods),
            "What a step-up may ask for, the first by default.",
        ),
        Setting(
            "identify_false_match_target",
            f"{settings.identify_false_match_target:g}",
            "1:N identification names a match only when N × FMR of the best score is within this.",
        ),
        Setting(
            "verify_fmr_target",
            f"{settings.verify_fmr_target:g}",
            "1:1 verification matches when k × FMR of the score is within this "
            "(k templates compared).",
        ),
        Setting(
            "duplicate_fmr",
            f"{settings.duplicate_fmr:g}",
            "An enrolment whose face matches an enrolled person at this FMR is refused as a "
            "duplicate.",
        ),
        Setting(
            "require_liveness",
            "yes" if settings.require_liveness else "no",
            "Whether enrolment and checkout accept only a live liveness session.",
        ),
    ]
