"""/admin: the operator's console, signed in with an admin API key of the network.

Read only but for handing out access: enrolment links (one person, or a kiosk's) and one-time
codes to the privacy portal. Shows the network, its merchants, stores and devices, daily
totals, the audit chain's verification, the engine's calibration table and DET curve, and the
risk settings with their meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from facekey.evaluation.plots import det_plot_rates
from facekey.flows import console
from facekey.flows.auth import Principal
from facekey.flows.checkout import daily_totals
from facekey.flows.platform import Platform
from facekey.flows.search import network_of
from facekey.flows.web_access import (
    PORTAL_CODE_TTL,
    issue_enrol_link,
    issue_portal_code,
    sign_in_operator,
)
from facekey.security.api_keys import Scope
from facekey.web.common import Visit, current, page, platform_of, sign_in_form, sign_out, visit
from facekey.web.security import check_csrf
from facekey.web.words import message_for

router = APIRouter(prefix="/admin", include_in_schema=False)

NAV: Final = (
    ("/admin", "Network"),
    ("/admin/totals", "Daily totals"),
    ("/admin/audit", "Audit log"),
    ("/admin/engine", "Engine"),
    ("/admin/risk", "Risk settings"),
    ("/admin/access", "Links and codes"),
)
Build = Callable[[Platform, Principal], dict[str, Any]]


async def _operator(request: Request) -> Visit | None:
    at = await current(request, "operator")
    return at if at is not None and at.web.signed_in else None


async def _console_page(
    request: Request, name: str, build: Build, at: Visit | None = None
) -> Response:
    """A console page built from the operator's principal; the sign-in page without one."""
    at = at or await _operator(request)
    if at is None:
        return RedirectResponse("/admin/login", status_code=303)
    platform = platform_of(request)
    principal = at.web.principal
    context = await run_in_threadpool(build, platform, principal)
    network = await run_in_threadpool(network_of, platform, principal.network_id)
    return page(request, at, name, {"nav": NAV, "network": network, **context})


@router.get("/login")
async def login_page(request: Request) -> Response:
    if await _operator(request) is not None:
        return RedirectResponse("/admin", status_code=303)
    return page(request, await visit(request, "operator"), "admin_login.html", {"error": None})


@router.post("/login")
async def login(
    request: Request, api_key: Annotated[str, Form(max_length=200)], csrf: Annotated[str, Form()]
) -> Response:
    async def failed(at: Visit, words: str, status: int) -> Response:
        return page(request, at, "admin_login.html", {"error": words}, status)

    return await sign_in_form(
        request,
        "operator",
        csrf,
        lambda platform, web, client: sign_in_operator(platform, web, api_key, client),
        failed,
        "/admin",
    )


@router.post("/sign-out")
async def operator_sign_out(request: Request, csrf: Annotated[str, Form()]) -> Response:
    return await sign_out(request, "operator", csrf, "/admin/login")


@router.get("")
async def network_page(request: Request, devices_from: int = 0) -> Response:
    def build(platform: Platform, principal: Principal) -> dict[str, Any]:
        return {
            "overview": console.overview(platform, principal, devices_from),
            "per_page": console.DEVICES_PER_PAGE,
        }

    return await _console_page(request, "admin_network.html", build)


@router.get("/totals")
async def totals_page(request: Request, day: str | None = None) -> Response:
    chosen = day or datetime.now(UTC).date().isoformat()

    def build(platform: Platform, principal: Principal) -> dict[str, Any]:
        try:
            totals, error = daily_totals(platform, principal, chosen).merchants, None
        except Exception as exc:
            totals, error = [], message_for(exc)[1]
        names = console.merchant_names(platform, principal)
        return {"day": chosen, "totals": totals, "names": names, "error": error}

    return await _console_page(request, "admin_totals.html", build)


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    def build(platform: Platform, principal: Principal) -> dict[str, Any]:
        return {"audit": console.audit_view(platform, principal)}

    return await _console_page(request, "admin_audit.html", build)


@router.get("/engine")
async def engine_page(request: Request) -> Response:
    def build(platform: Platform, principal: Principal) -> dict[str, Any]:
        return {"engines": console.engine_views(platform, principal)}

    return await _console_page(request, "admin_engine.html", build)


@router.get("/engine/det.png")
async def det_png(request: Request) -> Response:
    """The DET curves of the network's calibration tables (drawn once per process)."""
    at = await _operator(request)
    if at is None:
        return Response(status_code=401)
    platform = platform_of(request)
    curves = await run_in_threadpool(console.det_curves, platform, at.web.principal)
    cache: dict[tuple[str, ...], bytes] = request.app.state.web_det_cache
    key = tuple(curves)
    if key not in cache and curves:
        cache[key] = await run_in_threadpool(det_plot_rates, curves, "Calibrated DET curves")
    if key not in cache:
        return Response(status_code=404)
    return Response(cache[key], media_type="image/png")


@router.get("/risk")
async def risk_page(request: Request) -> Response:
    def build(platform: Platform, principal: Principal) -> dict[str, Any]:
        return {"settings": console.risk_settings(platform, principal)}

    return await _console_page(request, "admin_risk.html", build)


def _access(issued: dict[str, Any]) -> Build:
    def build(platform: Platform, principal: Principal) -> dict[str, Any]:
        principal.require(Scope.ADMIN)
        return {"issued": issued, "portal_minutes": int(PORTAL_CODE_TTL.total_seconds() // 60)}

    return build


@router.get("/access")
async def access_page(request: Request) -> Response:
    return await _console_page(request, "admin_access.html", _access({}))


@router.post("/access/enrol-link")
async def new_enrol_link(
    request: Request,
    csrf: Annotated[str, Form()],
    kind: Annotated[str, Form(pattern="^(person|kiosk)$")] = "person",
) -> Response:
    async def issue(at: Visit) -> dict[str, Any]:
        code = await run_in_threadpool(
            lambda: issue_enrol_link(
                platform_of(request), at.web.principal, reusable=kind == "kiosk"
            )
        )
        return {"enrol_link": f"{request.base_url}enrol/start/{code}", "kiosk": kind == "kiosk"}

    return await _issue(request, csrf, issue)


@router.post("/access/portal-code")
async def new_portal_code(
    request: Request,
    csrf: Annotated[str, Form()],
    subject_id: Annotated[str, Form(max_length=36)],
) -> Response:
    async def issue(at: Visit) -> dict[str, Any]:
        code = await run_in_threadpool(
            issue_portal_code, platform_of(request), at.web.principal, subject_id.strip()
        )
        return {"portal_code": code, "portal_url": f"{request.base_url}me"}

    return await _issue(request, csrf, issue)


async def _issue(request: Request, csrf: str, issue: Callable[[Visit], Any]) -> Response:
    """Hand out access, shown once on the page that asked for it."""
    at = await _operator(request)
    if at is None:
        return RedirectResponse("/admin/login", status_code=303)
    try:
        check_csrf(request, "operator", csrf)
        issued = await issue(at)
    except Exception as exc:
        issued = {"error": message_for(exc)[1]}
    return await _console_page(request, "admin_access.html", _access(issued), at)
