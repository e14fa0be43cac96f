"""/v1/identify: 1:N search of the caller's network."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool

from facekey.flows import search
from facekey.service.deps import PlatformDep, TerminalKey, form_text, read_upload

router = APIRouter(tags=["identification"])


@router.post("/v1/identify", summary="Who is this? (1:N)")
async def identify(
    platform: PlatformDep,
    principal: TerminalKey,
    image: Annotated[UploadFile, File()],
    purpose: Annotated[str | None, Form()] = None,
    max_candidates: Annotated[int, Form(ge=1, le=search.MAX_CANDIDATES)] = 5,
) -> dict[str, Any]:
    data = await read_upload(image, platform, name="image")
    result = await run_in_threadpool(
        lambda: search.identify(
            platform,
            principal,
            data,
            purpose=form_text(purpose, "purpose", max_length=40),
            max_candidates=max_candidates,
        )
    )
    return {
        "candidates": [
            {"subject_id": c.subject_id, "score": c.score, "fmr": c.fmr} for c in result.candidates
        ],
        "match": result.match,
        "fmr_target": result.fmr_target,
    }
