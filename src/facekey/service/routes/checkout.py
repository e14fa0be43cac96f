"""/v1/checkout: signed terminal calls, step-up, the ledger; personalization and exclusions.

Checkout calls are signed by the terminal over the raw body, so these routes read the body
first, check the signature, and only then parse the form.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from facekey.errors import InvalidRequest
from facekey.flows import checkout as checkout_flow
from facekey.flows.checkout import CheckoutAnswer, DailyTotals, LedgerEntry
from facekey.flows.personalization import (
    MAX_PREFERENCES_BYTES,
    Exclusions,
    PreferencesStored,
    set_exclusion,
    set_preferences,
)
from facekey.service.deps import (
    MAX_JSON_DEPTH,
    AdminKey,
    EnrolKey,
    PathId,
    PlatformDep,
    PrivacyKey,
    TerminalKey,
    form_text,
    json_object,
    one_upload,
    read_upload,
    signed_device,
)
from facekey.service.openapi import SIGNED
from facekey.service.problems import (
    BODY_PROBLEMS,
    COMMON_PROBLEMS,
    IMAGE_PROBLEMS,
    problem_responses,
)

router = APIRouter(tags=["checkout"], responses=problem_responses(*COMMON_PROBLEMS))
#: A signed call with a face: replays and reused keys conflict, sessions may have expired.
_SIGNED_FACE_PROBLEMS = problem_responses(404, 409, 410, *IMAGE_PROBLEMS)

#: ASCII digits only: ``str.isdigit`` and ``int`` also take "²", "١٢٣" and "𝟙𝟚𝟛".
_AMOUNT = re.compile(r"[0-9]{1,15}")

_FIELDS = {
    "amount": {"type": "integer", "description": "minor units (cents)"},
    "currency": {"type": "string", "example": "EUR"},
    "merchant_id": {"type": "string"},
    "store_id": {"type": "string"},
    "idempotency_key": {"type": "string"},
    "image": {"type": "string", "format": "binary"},
    "template": {"type": "string", "description": "base64 template bytes from the device"},
    "liveness_session_id": {"type": "string", "description": "this terminal's live session"},
}
_STEP_UP_FIELDS = {
    "phone_digits": {"type": "string", "description": "the phone number's last 4 digits"},
    "pin": {"type": "string"},
    "image": {"type": "string", "format": "binary"},
    "template": {"type": "string"},
}


def _multipart(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": fields, "required": required}
    return {
        "requestBody": {"content": {"multipart/form-data": {"schema": schema}}, "required": True}
    }


def _text(form: FormData, name: str, *, required: bool = True) -> str | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise InvalidRequest(f"{name} must be a form field, not a file")
    text = form_text(value, name)
    if text is None and required:
        raise InvalidRequest(f"{name} is required")
    return text


async def _probe(form: FormData, platform: PlatformDep) -> tuple[bytes | None, bytes | None]:
    image = one_upload(form, "image")
    data = None if image is None else await read_upload(image, platform, name="image")
    encoded = _text(form, "template", required=False)
    template = None
    if encoded is not None:
        try:
            template = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest("template must be base64") from exc
    return data, template


@router.post(
    "/v1/checkout",
    summary="Pay by face: approve, ask for a step-up, or decline",
    dependencies=[SIGNED],
    openapi_extra=_multipart(
        _FIELDS, ["amount", "currency", "merchant_id", "store_id", "idempotency_key"]
    ),
    response_model=CheckoutAnswer,
    response_model_exclude_unset=True,  # an answer has only the fields its decision gives
    responses=_SIGNED_FACE_PROBLEMS,
)
async def checkout(
    request: Request, platform: PlatformDep, principal: TerminalKey
) -> CheckoutAnswer:
    device = await signed_device(request, platform, principal)
    async with request.form(max_files=2, max_fields=20) as form:
        amount = _text(form, "amount") or ""
        if not _AMOUNT.fullmatch(amount):
            raise InvalidRequest("amount must be a whole number of minor units, in digits 0-9")
        image, template = await _probe(form, platform)
        body = checkout_flow.CheckoutRequest(
            amount_minor=int(amount),
            currency=_text(form, "currency") or "",
            merchant_id=_text(form, "merchant_id") or "",
            store_id=_text(form, "store_id") or "",
            idempotency_key=_text(form, "idempotency_key") or "",
            image=image,
            template=template,
            liveness_session_id=_text(form, "liveness_session_id", required=False),
        )
    return await run_in_threadpool(checkout_flow.checkout, platform, principal, device, body)


@router.post(
    "/v1/checkout/{authorization_id}/step-up",
    summary="Finish a checkout with the phone's last 4 digits or a PIN",
    dependencies=[SIGNED],
    openapi_extra=_multipart(_STEP_UP_FIELDS, []),
    response_model=CheckoutAnswer,
    response_model_exclude_unset=True,
    responses=_SIGNED_FACE_PROBLEMS,
)
async def step_up(
    authorization_id: PathId, request: Request, platform: PlatformDep, principal: TerminalKey
) -> CheckoutAnswer:
    device = await signed_device(request, platform, principal)
    async with request.form(max_files=2, max_fields=10) as form:
        image, template = await _probe(form, platform)
        digits = _text(form, "phone_digits", required=False)
        pin = _text(form, "pin", required=False)
    return await run_in_threadpool(
        lambda: checkout_flow.step_up(
            platform,
            principal,
            device,
            authorization_id,
            phone_digits=digits,
            pin=pin,
            image=image,
            template=template,
        )
    )


@router.get(
    "/v1/authorizations/{authorization_id}",
    summary="A ledger entry",
    responses=problem_responses(404),
)
async def authorization(
    authorization_id: PathId, platform: PlatformDep, principal: TerminalKey
) -> LedgerEntry:
    return await run_in_threadpool(
        checkout_flow.authorization, platform, principal, authorization_id
    )


@router.get("/v1/admin/daily-totals", summary="Approvals and amounts per merchant for a day")
async def daily_totals(day: str, platform: PlatformDep, principal: AdminKey) -> DailyTotals:
    return await run_in_threadpool(checkout_flow.daily_totals, platform, principal, day)


@router.put(
    "/v1/subjects/{subject_id}/preferences/{merchant_id}",
    summary="Personalization",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "the merchant's preferences: a JSON object of at most "
                        f"{MAX_PREFERENCES_BYTES} bytes, nested at most {MAX_JSON_DEPTH} deep",
                    }
                }
            },
            "required": True,
        }
    },
    responses=problem_responses(404, *BODY_PROBLEMS),
)
async def preferences(
    subject_id: PathId,
    merchant_id: PathId,
    request: Request,
    platform: PlatformDep,
    principal: EnrolKey,
) -> PreferencesStored:
    payload = json_object(await request.body(), max_bytes=MAX_PREFERENCES_BYTES)
    return await run_in_threadpool(
        set_preferences, platform, principal, subject_id, merchant_id, payload
    )


@router.put(
    "/v1/subjects/{subject_id}/exclusions/{merchant_id}",
    summary="Exclude a merchant",
    responses=problem_responses(404),
)
async def exclude(
    subject_id: PathId, merchant_id: PathId, platform: PlatformDep, principal: PrivacyKey
) -> Exclusions:
    return await run_in_threadpool(
        lambda: set_exclusion(platform, principal, subject_id, merchant_id, excluded=True)
    )


@router.delete(
    "/v1/subjects/{subject_id}/exclusions/{merchant_id}",
    summary="Include again",
    responses=problem_responses(404),
)
async def include(
    subject_id: PathId, merchant_id: PathId, platform: PlatformDep, principal: PrivacyKey
) -> Exclusions:
    return await run_in_threadpool(
        lambda: set_exclusion(platform, principal, subject_id, merchant_id, excluded=False)
    )
