"""RFC 9457 problem+json: the one place where facekey errors become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facekey import errors

log = logging.getLogger(__name__)

PROBLEM_JSON: Final = "application/problem+json"
TYPE_BASE: Final = "https://facekey.dev/problems/"

# Most specific first: the first class an error is an instance of decides.
_STATUS: Final[tuple[tuple[type[errors.FacekeyError], int], ...]] = (
    (errors.ImageTooLarge, 413),
    (errors.UnsupportedImage, 415),
    (errors.ImageError, 422),
    (errors.FaceError, 422),
    (errors.InvalidRequest, 422),
    (errors.LivenessSessionNotFound, 404),
    (errors.LivenessSessionExpired, 410),
    (errors.LivenessSessionClosed, 409),
    (errors.LivenessSessionUsed, 409),
    (errors.LivenessLocked, 429),
    (errors.LivenessError, 422),
    (errors.NotFound, 404),
    (errors.SubjectNotActive, 404),
    (errors.NetworkNotFound, 404),
    (errors.AuthenticationFailed, 401),
    (errors.InvalidApiKey, 401),
    (errors.PermissionDenied, 403),
    (errors.DeviceDisabled, 403),
    (errors.ReplayedRequest, 409),
    (errors.SignatureError, 401),
    (errors.IdempotencyConflict, 409),
    (errors.EngineMismatch, 409),
)


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body | extra, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: errors.FacekeyError) -> int:
    """The HTTP status of a facekey error (500 for anything not caused by the request)."""
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 500)


def _slug(exc: Exception) -> str:
    name = type(exc).__name__
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


async def _facekey_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.FacekeyError)
    status = status_of(exc)
    if status >= 500:
        log.error("internal error on %s %s: %r", request.method, request.url.path, exc)
        return problem(500, "internal-error", "Internal error", "the server could not do this")
    response = problem(status, _slug(exc), _title(exc), str(exc), **_extra(request, exc))
    if isinstance(exc, errors.LivenessLocked):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _title(exc: Exception) -> str:
    doc = (type(exc).__doc__ or _slug(exc)).strip()
    return doc.splitlines()[0].rstrip(".")


def _extra(request: Request, exc: Exception) -> dict[str, Any]:
    """Extra fields: the existing subject of a duplicate (admins only), a lockout's wait."""
    principal = getattr(request.state, "principal", None)
    if isinstance(exc, errors.DuplicateEnrolment) and getattr(principal, "scope", None) == "admin":
        return {"existing_subject_id": exc.existing_subject_id}
    if isinstance(exc, errors.LivenessLocked):
        return {"retry_after": exc.retry_after_s}
    return {}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)
    return problem(422, "invalid-request", "Invalid request", detail, errors=problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, "http-error", str(exc.detail), str(exc.detail))


def install_problem_handlers(app: FastAPI) -> None:
    """Map facekey errors, validation errors and HTTP errors to problem+json."""
    app.add_exception_handler(errors.FacekeyError, _facekey_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
