"""/me: the customer's privacy portal.

A customer proves who they are (a one-time code an operator gives them, or a camera check
plus their phone number's last four digits), then sees what facekey holds about them (the
GDPR Art. 15 export, templates as metadata only), withdraws a purpose, excludes or re-includes
a merchant, and erases everything, with the receipt shown and downloadable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Final

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import JsonValue

from facekey.errors import NotFound
from facekey.flows import privacy
from facekey.flows.personalization import set_exclusion
from facekey.flows.platform import Platform
from facekey.flows.search import network_of
from facekey.flows.web_access import (
    WebIdentity,
    choose_network,
    end_session,
    forget_subject,
    merchant_choices,
    save_state,
    sign_in_with_code,
    sign_in_with_face,
)
from facekey.web.common import (
    Visit,
    authorised,
    current,
    page,
    platform_of,
    sign_in_form,
    sign_out,
    start_check,
    submit_check,
    visit,
    words_response,
)
from facekey.web.security import check_csrf, client_of, set_session_cookie
from facekey.web.words import message_for

router = APIRouter(prefix="/me", include_in_schema=False)

PURPOSE_WORDS: Final = {
    "payment": "Paying by face",
    "personalization": "Personalised offers at the shops you visit",
    "image_retention": "Keeping your enrolment photos (to move you to a new recognition engine)",
}


@router.get("")
async def portal(request: Request, network: str | None = None) -> Response:
    """Signed in: what we hold. Erased: the receipt. Otherwise: how to sign in."""
    at = await visit(request, "portal")
    platform = platform_of(request)
    if at.web.signed_in:
        try:
            return await _home(request, at)
        except NotFound:  # erased meanwhile (through the API, or in another browser)
            await run_in_threadpool(end_session, platform, at.web)
            at = await visit(request, "portal")
    if "receipt" in at.web.state:
        return page(request, at, "me_erased.html", {"receipt": at.web.state["receipt"]})
    error = None
    if network:
        try:
            web = await run_in_threadpool(choose_network, platform, at.web, network)
            at = Visit(at.kind, web, at.token, at.new)
        except NotFound as exc:
            error = message_for(exc)[1]
    return await _sign_in_page(request, at, error)


async def _sign_in_page(
    request: Request, at: Visit, error: str | None, status: int = 200
) -> Response:
    platform = platform_of(request)
    name = None
    if at.web.network_id is not None:
        name = (await run_in_threadpool(network_of, platform, at.web.network_id)).name
    return page(request, at, "me_sign_in.html", {"network": name, "error": error}, status)


async def _home(request: Request, at: Visit) -> Response:
    platform = platform_of(request)
    web = at.web
    held = await run_in_threadpool(privacy.export, platform, web.principal, web.subject_id or "")
    merchants = await run_in_threadpool(merchant_choices, platform, web)
    network = await run_in_threadpool(network_of, platform, web.network_id or "")
    notice = web.state.get("notice")
    if notice:
        await run_in_threadpool(lambda: save_state(platform, web, notice=None))
    context = {
        "held": held,
        "merchants": merchants,
        "network": network.name,
        "notice": notice,
        "purpose_words": PURPOSE_WORDS,
    }
    return page(request, at, "me.html", context)


@router.post("/code")
async def code_sign_in(
    request: Request, code: Annotated[str, Form(max_length=40)], csrf: Annotated[str, Form()]
) -> Response:
    async def failed(at: Visit, words: str, status: int) -> Response:
        return await _sign_in_page(request, at, words, status)

    return await sign_in_form(
        request,
        "portal",
        csrf,
        lambda platform, web, client: sign_in_with_code(platform, web, code, client),
        failed,
        "/me",
    )


@router.post("/check/start")
async def check_start(request: Request) -> Response:
    return await start_check(request, "portal")


@router.post("/check/frames")
async def check_frames(request: Request) -> Response:
    return await submit_check(request, "portal")


@router.post("/face")
async def face_sign_in(
    request: Request, digits: Annotated[str, Form(pattern=r"^[0-9]{4}$")]
) -> Response:
    """Sign in with the browser's live camera check and the phone's last four digits."""
    try:
        at = await authorised(request, "portal")
        token, _ = await run_in_threadpool(
            sign_in_with_face, platform_of(request), at.web, digits, client_of(request)
        )
    except Exception as exc:
        return words_response(exc)
    response = JSONResponse({"next": "/me"})
    set_session_cookie(response, request, "portal", token)
    return response


Action = Callable[[Platform, WebIdentity], str]


async def _act(request: Request, csrf: str, action: Action) -> Response:
    """Do what a signed-in customer asked, then show the portal with what happened."""
    at = await current(request, "portal")
    if at is None or not at.web.signed_in:
        return RedirectResponse("/me", status_code=303)
    platform = platform_of(request)
    try:
        check_csrf(request, "portal", csrf)
        notice = await run_in_threadpool(action, platform, at.web)
    except Exception as exc:
        notice = message_for(exc)[1]
    after = await current(request, "portal")  # as stored now: an erasure signs out
    if after is not None and after.web.signed_in:
        await run_in_threadpool(lambda: save_state(platform, after.web, notice=notice))
    return RedirectResponse("/me", status_code=303)


@router.post("/withdraw")
async def withdraw(
    request: Request, purpose: Annotated[str, Form(max_length=40)], csrf: Annotated[str, Form()]
) -> Response:
    def action(platform: Platform, web: WebIdentity) -> str:
        done = privacy.withdraw(platform, web.principal, web.subject_id or "", purpose)
        words = PURPOSE_WORDS.get(purpose, purpose)
        return f"Consent withdrawn: {words}." if done.withdrawn else f"Not given: {words}."

    return await _act(request, csrf, action)


@router.post("/exclusions")
async def exclusions(
    request: Request,
    merchant_id: Annotated[str, Form(max_length=36)],
    exclude: Annotated[str, Form(pattern="^(yes|no)$")],
    csrf: Annotated[str, Form()],
) -> Response:
    def action(platform: Platform, web: WebIdentity) -> str:
        excluded = exclude == "yes"
        set_exclusion(platform, web.principal, web.subject_id or "", merchant_id, excluded=excluded)
        return "You will not pay by face there." if excluded else "You can pay by face there."

    return await _act(request, csrf, action)


@router.post("/erase")
async def erase(
    request: Request,
    csrf: Annotated[str, Form()],
    confirm: Annotated[str | None, Form()] = None,
) -> Response:
    def action(platform: Platform, web: WebIdentity) -> str:
        if confirm != "yes":
            return "Tick the box to confirm that you want everything erased."
        erased = privacy.erase(platform, web.principal, web.subject_id or "")
        forget_subject(platform, web, erased.receipt)
        return "Erased."

    return await _act(request, csrf, action)


@router.get("/export.json")
async def export_file(request: Request) -> Response:
    """The Art. 15 export as a file to keep."""
    at = await current(request, "portal")
    if at is None or not at.web.signed_in:
        return RedirectResponse("/me", status_code=303)
    web = at.web
    held = await run_in_threadpool(
        privacy.export, platform_of(request), web.principal, web.subject_id or ""
    )
    return _download(held.model_dump(mode="json"), "facekey-my-data.json")


@router.get("/receipt.json")
async def receipt_file(request: Request) -> Response:
    """The erasure receipt as a file to keep."""
    at = await current(request, "portal")
    if at is None or "receipt" not in at.web.state:
        return RedirectResponse("/me", status_code=303)
    return _download(at.web.state["receipt"], "facekey-erasure-receipt.json")


def _download(body: JsonValue, filename: str) -> Response:
    return Response(
        json.dumps(body, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post("/sign-out")
async def customer_sign_out(request: Request, csrf: Annotated[str, Form()]) -> Response:
    return await sign_out(request, "portal", csrf, "/me")
