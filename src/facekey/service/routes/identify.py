"""/v1/identify: 1:N search of the caller's network."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from facekey.flows import search
from facekey.service.deps import PlatformDep, TerminalKey, form_text, read_upload, single_image
from facekey.service.problems import COMMON_PROBLEMS, IMAGE_PROBLEMS, problem_responses

router = APIRouter(tags=["identification"], responses=problem_responses(*COMMON_PROBLEMS))


class IdentifyAnswer(BaseModel):
    """The decision, and the rule and gallery size it was made with; no candidate list."""

    match: str | None = Field(description="the subject, only when the rule names a match")
    rule: str = Field(description="union-bound: N x FMR(best) within the target, with a margin")
    gallery_size: int = Field(description="N: the templates searched")
    false_match_target: float
    estimated_false_match: float | None = Field(
        description="N x FMR of the best score (an upper bound on naming a stranger)"
    )


@router.post(
    "/v1/identify",
    summary="Who is this? (1:N)",
    response_model=IdentifyAnswer,
    dependencies=[Depends(single_image)],
    responses=problem_responses(*IMAGE_PROBLEMS),
)
async def identify(
    platform: PlatformDep,
    principal: TerminalKey,
    image: Annotated[UploadFile, File()],
    purpose: Annotated[
        str | None, Form(description="payment or personalization; any when omitted")
    ] = None,
) -> IdentifyAnswer:
    data = await read_upload(image, platform, name="image")
    result = await run_in_threadpool(
        lambda: search.identify(
            platform, principal, data, purpose=form_text(purpose, "purpose", max_length=40)
        )
    )
    return IdentifyAnswer(**vars(result))
