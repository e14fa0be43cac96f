"""/v1/fleet: device provisioning, heartbeats, desired configuration, health and screening
counts (:mod:`facekey.flows.fleet`).

Devices call with their own terminal key and sign every call like a checkout (the signature
covers the raw JSON body); ``POST /v1/fleet/enrol`` takes a one-time enrolment token instead.
Everything else is for admin keys.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import JsonValue

from facekey.errors import InvalidRequest
from facekey.flows import fleet
from facekey.flows.devices import DisabledDevice, disable_device
from facekey.service.deps import (
    ID_TEXT,
    AdminKey,
    PathId,
    PlatformDep,
    TerminalKey,
    json_object,
    signed_device,
)
from facekey.service.openapi import SIGNED
from facekey.service.problems import BODY_PROBLEMS, COMMON_PROBLEMS, problem_responses

router = APIRouter(
    prefix="/v1/fleet", tags=["fleet"], responses=problem_responses(*COMMON_PROBLEMS)
)
#: Beyond any fleet (and within what a database takes as an OFFSET).
_MAX_OFFSET = 10**9
#: A device's signed call: a replayed nonce conflicts.
_SIGNED_PROBLEMS = problem_responses(409, *BODY_PROBLEMS)

#: Heartbeats, releases and counts are small; nothing in them needs more.
_MAX_JSON = 16 * 1024


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    body = {"type": "object", "properties": schema}
    return {"requestBody": {"content": {"application/json": {"schema": body}}, "required": True}}


def _number(body: dict[str, JsonValue], name: str, default: float | None = None) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{name} is a number")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number):
        raise InvalidRequest(f"{name} is a finite number")
    return number


def _ttl(body: dict[str, JsonValue]) -> timedelta:
    minutes = _number(body, "ttl_minutes", 24 * 60)
    if not 1 <= minutes <= fleet.MAX_TOKEN_TTL / timedelta(minutes=1):
        raise InvalidRequest("an enrolment token lives between one minute and 30 days")
    return timedelta(minutes=minutes)


def release_cache(request: Request) -> fleet.ReleaseCache:
    """This app's release books (made on first use)."""
    cache = getattr(request.app.state, "fleet_releases", None)
    if cache is None:
        cache = request.app.state.fleet_releases = fleet.ReleaseCache()
    return cache


def _optional_id(body: dict[str, JsonValue], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not ID_TEXT.fullmatch(value):
        raise InvalidRequest(f"{name} is an id")
    return value


# ---------------------------------------------------------------------- devices


@router.post(
    "/enrol",
    status_code=201,
    summary="A device presents its one-time enrolment token: its id, secret and key, once",
    openapi_extra=_json({"token": {"type": "string"}}),
    responses=problem_responses(*BODY_PROBLEMS),
)
async def enrol(request: Request, platform: PlatformDep) -> fleet.EnrolledDevice:
    body = json_object(await request.body(), max_bytes=_MAX_JSON)
    token = body.get("token")
    if not isinstance(token, str) or len(token) > 200:
        raise InvalidRequest("token is the enrolment token's text")
    return await run_in_threadpool(fleet.enrol_device, platform.database, platform.vault, token)


@router.post(
    "/heartbeat",
    summary="A device's heartbeat; answers its desired release and period",
    openapi_extra=_json(
        {
            "software_version": {"type": "string"},
            "models": {"type": "array", "items": {"type": "object"}},
            "uptime_s": {"type": "integer"},
            "last_error": {"type": "string"},
            "camera": {"type": "string", "enum": ["ok", "missing", "error", "none"]},
            "release_id": {"type": "string"},
        }
    ),
    dependencies=[SIGNED],
    responses=_SIGNED_PROBLEMS,
)
async def heartbeat(
    request: Request, platform: PlatformDep, principal: TerminalKey
) -> fleet.DesiredConfiguration:
    raw = await request.body()
    device = await signed_device(request, platform, principal, raw)
    report = fleet.HeartbeatReport.parse(json_object(raw, max_bytes=_MAX_JSON))
    releases = release_cache(request)
    return await run_in_threadpool(fleet.heartbeat, platform.database, device, report, releases)


@router.get(
    "/config",
    summary="A device's desired release and period",
    dependencies=[SIGNED],
    responses=problem_responses(409),
)
async def config(
    request: Request, platform: PlatformDep, principal: TerminalKey
) -> fleet.DesiredConfiguration:
    device = await signed_device(request, platform, principal, b"")
    releases = release_cache(request)
    return await run_in_threadpool(fleet.desired_configuration, platform.database, device, releases)


@router.post(
    "/screening-counts",
    summary="A kiosk's totals for one UTC hour (screened, referred, failed): nothing else",
    openapi_extra=_json(
        {
            "hour": {"type": "string", "format": "date-time"},
            "screened": {"type": "integer"},
            "referred": {"type": "integer"},
            "failed": {"type": "integer"},
        }
    ),
    dependencies=[SIGNED],
    responses=_SIGNED_PROBLEMS,
)
async def screening_counts(
    request: Request, platform: PlatformDep, principal: TerminalKey
) -> fleet.ScreeningStored:
    raw = await request.body()
    device = await signed_device(request, platform, principal, raw)
    counts = fleet.ScreeningCounts.parse(json_object(raw, max_bytes=_MAX_JSON))
    return await run_in_threadpool(fleet.record_screening_counts, platform.database, device, counts)


# ---------------------------------------------------------------------- admin


@router.post(
    "/enrolment-tokens",
    status_code=201,
    summary="A one-time token that provisions one device into a store (shown once)",
    openapi_extra=_json(
        {
            "store_id": {"type": "string"},
            "name": {"type": "string"},
            "ttl_minutes": {"type": "integer"},
        }
    ),
    responses=problem_responses(404, *BODY_PROBLEMS),
)
async def enrolment_token(
    request: Request, platform: PlatformDep, principal: AdminKey
) -> fleet.EnrolmentToken:
    body = json_object(await request.body(), max_bytes=_MAX_JSON)
    store_id = _optional_id(body, "store_id")
    if store_id is None:
        raise InvalidRequest("store_id is required")
    ttl = _ttl(body)
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 200 or "\x00" in name):
        raise InvalidRequest("name is text of at most 200 characters (and no NUL)")
    return await run_in_threadpool(
        lambda: fleet.issue_enrolment_token(
            platform.database, principal.network_id, store_id, name=name, ttl=ttl
        )
    )


@router.get("/devices", summary="Devices: last seen, health, what they run and should run")
async def devices(
    platform: PlatformDep,
    principal: AdminKey,
    limit: Annotated[int, Query(ge=1, le=fleet.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
) -> list[fleet.DeviceView]:
    return await run_in_threadpool(
        lambda: fleet.list_devices(
            platform.database, principal.network_id, limit=limit, offset=offset
        )
    )


@router.get("/devices/{device_id}", summary="One device's health", responses=problem_responses(404))
async def device(device_id: PathId, platform: PlatformDep, principal: AdminKey) -> fleet.DeviceView:
    return await run_in_threadpool(
        fleet.device_health, platform.database, principal.network_id, device_id
    )


@router.post(
    "/devices/{device_id}/disable",
    summary="Disable a device: its next call is refused",
    responses=problem_responses(404),
)
async def disable(device_id: PathId, platform: PlatformDep, principal: AdminKey) -> DisabledDevice:
    return await run_in_threadpool(
        disable_device, platform.database, principal.network_id, device_id
    )


@router.put(
    "/devices/{device_id}/pin",
    summary="Hold a device on a release",
    openapi_extra=_json({"release_id": {"type": "string"}}),
    responses=problem_responses(404, *BODY_PROBLEMS),
)
async def pin(
    device_id: PathId, request: Request, platform: PlatformDep, principal: AdminKey
) -> fleet.PinnedDevice:
    body = json_object(await request.body(), max_bytes=_MAX_JSON)
    release_id = _optional_id(body, "release_id")
    if release_id is None:
        raise InvalidRequest("release_id is required")
    return await run_in_threadpool(
        fleet.pin_device, platform.database, principal.network_id, device_id, release_id
    )


@router.delete(
    "/devices/{device_id}/pin",
    summary="Let a device follow the rollouts again",
    responses=problem_responses(404),
)
async def unpin(
    device_id: PathId, platform: PlatformDep, principal: AdminKey
) -> fleet.PinnedDevice:
    return await run_in_threadpool(
        fleet.pin_device, platform.database, principal.network_id, device_id, None
    )


@router.post(
    "/releases",
    status_code=201,
    summary="A desired configuration for the network or a store, to a percentage first",
    openapi_extra=_json(
        {
            "software_version": {"type": "string"},
            "models": {"type": "array", "items": {"type": "object"}},
            "settings": {"type": "object"},
            "rollout_percent": {"type": "number"},
            "store_id": {"type": "string"},
        }
    ),
    responses=problem_responses(404, *BODY_PROBLEMS),
)
async def create_release(
    request: Request, platform: PlatformDep, principal: AdminKey
) -> fleet.ReleaseView:
    body = json_object(await request.body(), max_bytes=_MAX_JSON)
    version, models, settings = (body.get(k) for k in ("software_version", "models", "settings"))
    if not isinstance(version, str):
        raise InvalidRequest("software_version is required")
    if not isinstance(models, list | None) or not isinstance(settings, dict | None):
        raise InvalidRequest("models is a list and settings an object")
    return await run_in_threadpool(
        lambda: fleet.create_release(
            platform.database,
            principal.network_id,
            software_version=version,
            models=models or [],
            settings=settings or {},
            rollout_percent=_number(body, "rollout_percent", 100.0),
            store_id=_optional_id(body, "store_id"),
        )
    )


@router.patch(
    "/releases/{release_id}",
    summary="Widen or narrow a release's rollout",
    openapi_extra=_json({"rollout_percent": {"type": "number"}}),
    responses=problem_responses(404, *BODY_PROBLEMS),
)
async def rollout(
    release_id: PathId, request: Request, platform: PlatformDep, principal: AdminKey
) -> fleet.ReleaseView:
    body = json_object(await request.body(), max_bytes=_MAX_JSON)
    percent = _number(body, "rollout_percent")
    return await run_in_threadpool(
        fleet.set_rollout, platform.database, principal.network_id, release_id, percent
    )


@router.get("/screening", summary="Screening totals per hour of a UTC day (counts only)")
async def screening(day: str, platform: PlatformDep, principal: AdminKey) -> fleet.ScreeningDay:
    return await run_in_threadpool(
        fleet.screening_day, platform.database, principal.network_id, day
    )
