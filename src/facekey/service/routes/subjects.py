"""/v1/subjects: enrolment, more images, verification, export, withdrawal, erasure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from facekey.errors import InvalidRequest
from facekey.flows import enrol as enrol_flow
from facekey.flows import privacy, verification
from facekey.flows.consent import ConsentRequest
from facekey.flows.enrol import EnrolResult
from facekey.flows.privacy import Erasure, SubjectExport, Withdrawal
from facekey.service.deps import (
    EnrolKey,
    PathId,
    PlatformDep,
    PrivacyKey,
    VerifyKey,
    form_text,
    read_upload,
    single_image,
)
from facekey.service.problems import COMMON_PROBLEMS, IMAGE_PROBLEMS, problem_responses

router = APIRouter(
    prefix="/v1/subjects", tags=["subjects"], responses=problem_responses(*COMMON_PROBLEMS)
)


async def _images(platform: PlatformDep, uploads: list[UploadFile]) -> list[bytes]:
    limit = platform.settings.max_images_per_request
    if len(uploads) > limit:
        raise InvalidRequest(f"send at most {limit} images")
    return [await read_upload(u, platform, name=f"image {i}") for i, u in enumerate(uploads, 1)]


@router.post(
    "",
    status_code=201,
    summary="Enrol a consenting subject (1–5 images or a liveness session)",
    responses=problem_responses(404, 409, 410, *IMAGE_PROBLEMS),
)
async def create_subject(
    platform: PlatformDep,
    principal: EnrolKey,
    consent: Annotated[str, Form(description="JSON: purposes, terms_version, channel")],
    # No files is an empty list, not None: the OpenAPI then says "an array of files" (with
    # None it said "an array of files, or null", which a client sends as text).
    images: Annotated[
        list[UploadFile],
        File(default_factory=list, description="1–5 face images (or liveness_session_id)"),
    ],
    liveness_session_id: Annotated[
        str | None, Form(description="a live challenge session, instead of images")
    ] = None,
    phone: Annotated[str | None, Form()] = None,
    payment_token: Annotated[str | None, Form()] = None,
    external_ref: Annotated[str | None, Form()] = None,
    pin: Annotated[str | None, Form(description="4–8 digits for the checkout step-up")] = None,
) -> EnrolResult:
    request = enrol_flow.EnrolRequest(
        consent=ConsentRequest.parse(consent),
        images=await _images(platform, images),
        phone=form_text(phone, "phone", max_length=40),
        payment_token=form_text(payment_token, "payment_token", max_length=200),
        external_ref=form_text(external_ref, "external_ref", max_length=200),
        pin=form_text(pin, "pin", max_length=8),
        liveness_session_id=form_text(liveness_session_id, "liveness_session_id", max_length=36),
    )
    return await run_in_threadpool(enrol_flow.enrol, platform, principal, request)


@router.post(
    "/{subject_id}/images",
    status_code=201,
    summary="Add images to a subject",
    responses=problem_responses(404, *IMAGE_PROBLEMS),
)
async def add_images(
    subject_id: PathId,
    platform: PlatformDep,
    principal: EnrolKey,
    images: Annotated[list[UploadFile], File()],
) -> EnrolResult:
    data = await _images(platform, images)
    return await run_in_threadpool(enrol_flow.add_images, platform, principal, subject_id, data)


class VerifyAnswer(BaseModel):
    """A 1:1 decision: ``match`` when k · FMR(score) is within ``fmr_target``."""

    match: bool
    score: float
    fmr: float | None
    fmr_target: float


@router.post(
    "/{subject_id}/verify",
    summary="1:1 verification against one subject who consents to the purpose",
    response_model=VerifyAnswer,
    dependencies=[Depends(single_image)],
    responses=problem_responses(404, *IMAGE_PROBLEMS),
)
async def verify(
    subject_id: PathId,
    platform: PlatformDep,
    principal: VerifyKey,
    image: Annotated[UploadFile, File()],
    purpose: Annotated[str, Form(description="payment or personalization")],
) -> VerifyAnswer:
    data = await read_upload(image, platform, name="image")
    wanted = form_text(purpose, "purpose", max_length=40) or ""
    result = await run_in_threadpool(
        lambda: verification.verify(platform, principal, subject_id, data, purpose=wanted)
    )
    return VerifyAnswer(**vars(result))


@router.get(
    "/{subject_id}/export",
    summary="Everything held about a subject (GDPR Art. 15)",
    responses=problem_responses(404),
)
async def export(subject_id: PathId, platform: PlatformDep, principal: PrivacyKey) -> SubjectExport:
    return await run_in_threadpool(privacy.export, platform, principal, subject_id)


@router.post(
    "/{subject_id}/consents/{purpose}/withdraw",
    summary="Withdraw one purpose",
    responses=problem_responses(404),
)
async def withdraw(
    subject_id: PathId, purpose: PathId, platform: PlatformDep, principal: PrivacyKey
) -> Withdrawal:
    return await run_in_threadpool(privacy.withdraw, platform, principal, subject_id, purpose)


@router.delete(
    "/{subject_id}", summary="Erase a subject (GDPR Art. 17)", responses=problem_responses(404)
)
async def erase(subject_id: PathId, platform: PlatformDep, principal: PrivacyKey) -> Erasure:
    return await run_in_threadpool(privacy.erase, platform, principal, subject_id)
