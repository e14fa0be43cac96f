"""/enrol: a person enrols with their webcam, from an operator's enrolment link or a kiosk.

The page shows the terms and a choice per purpose, a phone number or PIN for step-up, then a
camera check (the API's challenge liveness session, with on-screen prompts) whose live frames
become the enrolment's templates. The frames go to the server in request bodies only.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from facekey.flows import web_checks
from facekey.flows.search import network_of
from facekey.flows.web_access import open_enrolment
from facekey.web.common import (
    Visit,
    authorised,
    current,
    page,
    platform_of,
    sign_in_form,
    start_check,
    submit_check,
    visit,
    words_response,
)
from facekey.web.security import clear_session_cookie

router = APIRouter(prefix="/enrol", include_in_schema=False)

#: The version of the terms the page shows; recorded with every consent given on it.
TERMS_VERSION: Final = "2026-12"
ENROLLED: Final = (
    "You are enrolled. You can now pay by face at the shops of {network}. To see, change or "
    "erase what we hold about you, use the privacy portal."
)


@router.get("/start/{code}")
async def landing(request: Request, code: str) -> Response:
    """An enrolment link's first page; the code is used only when the person begins (link
    previews in messaging apps fetch pages, and must not use it up)."""
    at = await visit(request, "enrol")
    return page(request, at, "enrol_start.html", {"code": code, "error": None})


@router.post("/start")
async def begin(
    request: Request, code: Annotated[str, Form(max_length=200)], csrf: Annotated[str, Form()]
) -> Response:
    async def failed(at: Visit, words: str, status: int) -> Response:
        return page(request, at, "enrol_start.html", {"code": code, "error": words}, status)

    return await sign_in_form(
        request,
        "enrol",
        csrf,
        lambda platform, web, client: open_enrolment(platform, web, code, client),
        failed,
        "/enrol",
    )


@router.get("")
async def enrol_page(request: Request) -> Response:
    at = await current(request, "enrol")
    if at is None or not at.web.signed_in or at.web.network_id is None:
        return page(request, await visit(request, "enrol"), "enrol_closed.html", {})
    network = await run_in_threadpool(network_of, platform_of(request), at.web.network_id)
    context = {
        "network": network.name,
        "retain_images": network.retain_images,
        "terms_version": TERMS_VERSION,
    }
    return page(request, at, "enrol.html", context)


@router.post("/check/start")
async def check_start(request: Request) -> Response:
    return await start_check(request, "enrol")


@router.post("/check/frames")
async def check_frames(request: Request) -> Response:
    return await submit_check(request, "enrol")


@router.post("/complete")
async def complete(
    request: Request,
    terms_version: Annotated[str, Form(max_length=64)],
    purposes: Annotated[list[str] | None, Form()] = None,
    phone: Annotated[str | None, Form(max_length=40)] = None,
    pin: Annotated[str | None, Form(max_length=8)] = None,
) -> Response:
    """Enrol the person of the browser's live check with the form's consent."""
    form = web_checks.EnrolForm(
        purposes=purposes or [],
        terms_version=terms_version,
        phone=(phone or "").strip() or None,
        pin=(pin or "").strip() or None,
    )
    try:
        at = await authorised(request, "enrol")
        web = at.web
        await run_in_threadpool(web_checks.complete_enrolment, platform_of(request), web, form)
        network = await run_in_threadpool(network_of, platform_of(request), web.network_id or "")
    except Exception as exc:
        return words_response(exc)
    kiosk = bool(web.state.get("kiosk"))
    response = JSONResponse({"message": ENROLLED.format(network=network.name), "kiosk": kiosk})
    if not kiosk:
        clear_session_cookie(response, request, "enrol")
    return response
