"""What every area of the pages does: find or open the browser's session, render a page with
its CSRF token, answer the scripts' calls in JSON with words, read the camera check's frames."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from facekey.errors import AuthenticationFailed, InvalidFrames
from facekey.flows import web_checks
from facekey.flows.liveness import FrameSubmission
from facekey.flows.platform import Platform
from facekey.flows.web_access import (
    Kind,
    WebIdentity,
    csrf_matches,
    csrf_token,
    end_session,
    find_session,
    open_session,
)
from facekey.liveness.session import MAX_FRAMES
from facekey.web.pages import pages_of
from facekey.web.security import (
    check_csrf,
    clear_session_cookie,
    client_of,
    session_token,
    set_session_cookie,
)
from facekey.web.words import liveness_words, message_for

SESSION_ENDED: Final = "Your session has ended. Reload the page to start again."
PROMPTS: Final = {
    "turn_left": "Turn your head slowly to your left",
    "turn_right": "Turn your head slowly to your right",
    "look_up": "Look up slowly",
    "blink": "Blink once",
}


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


@dataclass(frozen=True)
class Visit:
    """A browser's session in one area, and whether its cookie must be set."""

    kind: Kind
    web: WebIdentity
    token: str
    new: bool = False

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


async def current(request: Request, kind: Kind) -> Visit | None:
    """The browser's live session of ``kind``, or None."""
    token = session_token(request, kind)
    web = await run_in_threadpool(find_session, platform_of(request), kind, token)
    return None if web is None or token is None else Visit(kind, web, token)


async def visit(request: Request, kind: Kind) -> Visit:
    """The browser's session of ``kind``, or a new anonymous one (so its forms have a token)."""
    found = await current(request, kind)
    if found is not None:
        return found
    token, web = await run_in_threadpool(open_session, platform_of(request), kind)
    return Visit(kind, web, token, new=True)


def page(
    request: Request, at: Visit, name: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """A page of the visit's area, with its CSRF token (and its new cookie)."""
    response = pages_of(request).render(request, name, {"csrf": at.csrf, **context}, status)
    if at.new:
        set_session_cookie(response, request, at.kind, at.token)
    return response


def signed_in(request: Request, kind: Kind, token: str, url: str) -> RedirectResponse:
    """Go to ``url`` with the new session's cookie."""
    response = RedirectResponse(url, status_code=303)
    set_session_cookie(response, request, kind, token)
    return response


SignIn = Callable[[Platform, WebIdentity, str], tuple[str, WebIdentity]]
ErrorPage = Callable[[Visit, str, int], Awaitable[Response]]


async def sign_in_form(
    request: Request, kind: Kind, csrf: str, sign_in: SignIn, failed: ErrorPage, url: str
) -> Response:
    """A sign-in form's post: the new session's cookie and ``url``, or ``failed`` in words."""
    at = await visit(request, kind)
    try:
        check_csrf(request, kind, csrf)
        token, _ = await run_in_threadpool(
            sign_in, platform_of(request), at.web, client_of(request)
        )
    except Exception as exc:
        status, words = message_for(exc)
        return await failed(at, words, status)
    return signed_in(request, kind, token, url)


async def sign_out(request: Request, kind: Kind, csrf: str, url: str) -> Response:
    """End the browser's session of ``kind`` (a form with a wrong token changes nothing)."""
    at = await current(request, kind)
    response = RedirectResponse(url, status_code=303)
    if at is None or not csrf_matches(at.token, csrf):
        return response
    await run_in_threadpool(end_session, platform_of(request), at.web)
    clear_session_cookie(response, request, kind)
    return response


def words_response(exc: Exception) -> JSONResponse:
    """A script's call that failed: the status, and what to tell the person."""
    status, words = message_for(exc)
    headers = {}
    retry = getattr(exc, "retry_after_s", None)
    if isinstance(retry, int):
        headers["Retry-After"] = str(retry)
    return JSONResponse({"message": words}, status_code=status, headers=headers)


async def authorised(request: Request, kind: Kind) -> Visit:
    """The browser's session of ``kind`` for a script's call, its CSRF header checked."""
    at = await current(request, kind)
    if at is None:
        raise AuthenticationFailed(SESSION_ENDED)
    check_csrf(request, kind, None)
    return at


Work = Callable[[Platform, WebIdentity, str], dict[str, Any]]


async def json_call(request: Request, kind: Kind, work: Work) -> Response:
    """Run a script's call for the browser's session; failures answered in words."""
    try:
        at = await authorised(request, kind)
        body = await run_in_threadpool(work, platform_of(request), at.web, client_of(request))
    except Exception as exc:
        return words_response(exc)
    return JSONResponse(body)


async def start_check(request: Request, kind: Kind) -> Response:
    """Open the camera check of the browser's session: its challenges and their prompts."""

    def work(platform: Platform, web: WebIdentity, client: str) -> dict[str, Any]:
        opened = web_checks.start_check(platform, web, client)
        prompts = [PROMPTS[c] for c in opened.challenges]
        return {
            "challenges": opened.challenges,
            "expires_at": opened.expires_at,
            "prompts": prompts,
        }

    return await json_call(request, kind, work)


async def submit_check(request: Request, kind: Kind) -> Response:
    """Decide the camera check from the frames the page captured."""
    try:
        at = await authorised(request, kind)
        submission = await _frames(request, platform_of(request))
        decided = await run_in_threadpool(
            web_checks.submit_check, platform_of(request), at.web, submission, client_of(request)
        )
    except Exception as exc:
        return words_response(exc)
    live = decided.result == "live"
    return JSONResponse({"live": live, "message": None if live else liveness_words(decided.reason)})


async def _frames(request: Request, platform: Platform) -> FrameSubmission:
    limit = platform.settings.images.max_bytes
    async with request.form(max_files=MAX_FRAMES + 2, max_fields=4) as form:
        frames = []
        for value in form.getlist("frames"):
            if not isinstance(value, UploadFile):
                raise InvalidFrames("frames must be image files")
            frames.append(await value.read(limit + 1))
        timestamps = form.get("timestamps")
    if not isinstance(timestamps, str):
        raise InvalidFrames("send the frames' timestamps")
    return FrameSubmission(frames=frames, timestamps_ms=timestamps)
