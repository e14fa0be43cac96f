"""/v1/liveness: open a liveness session, then decide it from its frames.

``POST /v1/liveness/sessions/{id}/frames`` answers ``live``, ``spoof`` or ``inconclusive``. A
passive (checkout) session whose burst is inconclusive answers ``inconclusive`` with
``challenge`` (``turn_left``, ``turn_right`` or ``look_up``, chosen by the server) and
``challenge_span_ms``: the terminal shows the prompt and posts the challenge frames (≤ 3 s) to
the same route once; that answer is final.

Enrol keys open sessions for enrolment (no device). Terminal keys sign their calls like
checkouts (the signature covers the raw body), which binds the session to the signing device:
only that device may send its frames and use it at checkout.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData, UploadFile

from facekey.errors import InvalidRequest
from facekey.flows import liveness as liveness_flow
from facekey.flows.auth import Principal
from facekey.flows.devices import DeviceIdentity
from facekey.flows.liveness import LivenessAnswer, OpenedSession
from facekey.flows.platform import Platform
from facekey.liveness.session import MAX_FRAMES
from facekey.security.api_keys import Scope
from facekey.service.deps import ID_PATTERN, PathId, PlatformDep, VerifyKey, signed_device
from facekey.service.problems import (
    BODY_PROBLEMS,
    COMMON_PROBLEMS,
    IMAGE_PROBLEMS,
    problem_responses,
)

router = APIRouter(
    prefix="/v1/liveness", tags=["liveness"], responses=problem_responses(*COMMON_PROBLEMS)
)


class SessionRequest(BaseModel):
    """The body of ``POST /v1/liveness/sessions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["challenge", "passive"]
    subject_id: str | None = Field(default=None, min_length=1, max_length=36, pattern=ID_PATTERN)


_FRAME_FIELDS = {
    "frames": {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": "3–20 images, in capture order",
    },
    "timestamps": {
        "type": "string",
        "description": "JSON list of capture times in ms, strictly increasing, ≤ 10 s span",
    },
    "thermal": {
        "type": "string",
        "format": "binary",
        "description": "16-bit PNG (centi-kelvin) or .npy (°C), registered to the last frame",
    },
}


def _body(schema: dict[str, Any], content: str) -> dict[str, Any]:
    return {"requestBody": {"content": {content: {"schema": schema}}, "required": True}}


async def _device(
    request: Request, platform: Platform, principal: Principal, body: bytes
) -> DeviceIdentity | None:
    """The signing terminal of a terminal key's call; None for other keys."""
    if principal.scope is not Scope.TERMINAL:
        return None
    return await signed_device(request, platform, principal, body)


def _session_request(body: bytes) -> SessionRequest:
    try:
        return SessionRequest.model_validate_json(body or b"{}")
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidRequest(f"invalid liveness session request: {reasons}") from exc


@router.post(
    "/sessions",
    status_code=201,
    summary="Open a liveness session (challenge: enrolment; passive: checkout)",
    openapi_extra=_body(SessionRequest.model_json_schema(), "application/json"),
    responses=problem_responses(404, 409, 429, *BODY_PROBLEMS),
)
async def create_session(
    request: Request, platform: PlatformDep, principal: VerifyKey
) -> OpenedSession:
    body = await request.body()
    device = await _device(request, platform, principal, body)
    asked = _session_request(body)
    return await run_in_threadpool(
        lambda: liveness_flow.create_session(
            platform, principal, device, asked.mode, subject_id=asked.subject_id
        )
    )


async def _read(value: UploadFile | str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes: the flow refuses an oversized frame and fails the session."""
    if isinstance(value, str):
        return value.encode()[: limit + 1]
    return await value.read(limit + 1)


async def _submission(form: FormData, platform: Platform) -> liveness_flow.FrameSubmission:
    limit = platform.settings.images.max_bytes
    frames = [await _read(v, limit) for v in form.getlist("frames")]
    timestamps = form.get("timestamps")
    if isinstance(timestamps, UploadFile):
        timestamps = (await timestamps.read(64 * 1024)).decode("utf-8", "replace")
    thermal = form.get("thermal")
    return liveness_flow.FrameSubmission(
        frames=frames,
        timestamps_ms=timestamps,
        thermal=await _read(thermal, limit) if thermal is not None else None,
    )


@router.post(
    "/sessions/{session_id}/frames",
    summary="Decide a liveness session from its frames: live, spoof or inconclusive "
    "(a passive session's inconclusive burst answers a challenge; post its frames here too)",
    openapi_extra=_body(
        {"type": "object", "properties": _FRAME_FIELDS, "required": ["frames", "timestamps"]},
        "multipart/form-data",
    ),
    response_model=LivenessAnswer,
    response_model_exclude_unset=True,  # a step-up's challenge fields only when it steps up
    responses=problem_responses(404, 409, 410, 429, *IMAGE_PROBLEMS),
)
async def submit_frames(
    session_id: PathId, request: Request, platform: PlatformDep, principal: VerifyKey
) -> LivenessAnswer:
    body = await request.body()
    device = await _device(request, platform, principal, body)
    max_files = MAX_FRAMES + 12  # more reach the flow's precise refusal
    async with request.form(max_files=max_files, max_fields=10) as form:
        submission = await _submission(form, platform)
    return await run_in_threadpool(
        liveness_flow.submit_frames, platform, principal, device, session_id, submission
    )
