"""RFC 9457 problem+json: the one place where errors become HTTP responses.

Every problem carries the request's id (``request_id``, also the ``X-Request-ID`` header), and
so does the log line of an internal error: a caller quoting it finds the traceback. Whatever a
route lets escape, a bug included, becomes a problem+json 500, never a plain-text page.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from facekey import errors
from facekey.service.requests import HEADER as REQUEST_ID_HEADER

log = logging.getLogger(__name__)

PROBLEM_JSON: Final = "application/problem+json"
TYPE_BASE: Final = "https://facekey.dev/problems/"

# Most specific first: the first class an error is an instance of decides.
_STATUS: Final[tuple[tuple[type[errors.FacekeyError], int], ...]] = (
    (errors.ImageTooLarge, 413),
    (errors.ImageBusy, 503),
    (errors.UnsupportedImage, 415),
    (errors.ImageError, 422),
    (errors.FaceError, 422),
    (errors.InvalidRequest, 422),
    (errors.LivenessSessionNotFound, 404),
    (errors.LivenessSessionExpired, 410),
    (errors.LivenessSessionClosed, 409),
    (errors.LivenessSessionUsed, 409),
    (errors.LivenessLocked, 429),
    (errors.TooManyAttempts, 429),
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


class FieldProblem(BaseModel):
    """One reason a request failed validation."""

    loc: list[str | int] = Field(description="where: the part of the request, then the field")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem: the body of every error answer (application/problem+json)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="a URI naming the kind of problem")
    title: str = Field(description="the kind of problem, in plain words")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong with this request")
    request_id: str | None = Field(
        default=None, description="this request's id (also X-Request-ID): quote it in reports"
    )
    errors: list[FieldProblem] | None = Field(
        default=None, description="validation errors, one per field"
    )
    existing_subject_id: str | None = Field(
        default=None, description="a duplicate enrolment's subject (admin keys only)"
    )
    retry_after: int | None = Field(default=None, description="seconds to wait (also Retry-After)")


#: What each error status means, for the OpenAPI of the routes that may answer it.
_MEANINGS: Final[dict[int, str]] = {
    400: "The body cannot be parsed (malformed multipart data)",
    401: "No valid API key (Authorization: Bearer), or a terminal call's signature is refused",
    403: "The key's scope, or the terminal's merchant and store, do not allow this",
    404: "No such resource in the caller's network",
    409: "A conflict: a replayed nonce, a reused idempotency key, a session already used",
    410: "The liveness session has expired",
    413: "The body or an image is over the configured limits",
    415: "The file is not a JPEG, PNG or WebP image",
    422: "The request is malformed, or its image has no usable face",
    429: "Too many failed liveness sessions lately: retry after Retry-After seconds",
    500: "A bug: quote the request id when you report it",
    503: "The server is decoding as many large images as it allows: retry after Retry-After",
}
_PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}

#: The errors any authenticated route may answer.
COMMON_PROBLEMS: Final = (401, 403, 422, 500)
#: The errors of a route that reads a body, besides the common ones.
BODY_PROBLEMS: Final = (400, 413)
#: The errors of a route that reads uploaded images, besides those of a body.
IMAGE_PROBLEMS: Final = (*BODY_PROBLEMS, 415, 503)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses: problem+json bodies (:class:`Problem`)."""
    return {
        status: {
            "description": _MEANINGS[status],
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
        }
        for status in sorted(set(statuses))
    }


def problem_body(
    status: int, slug: str, title: str, detail: str, request_id: str | None, **extra: Any
) -> Problem:
    """A problem (``request_id`` when the request has one); ``extra``: the fields of
    :class:`Problem` some problems add."""
    return Problem(
        type=TYPE_BASE + slug,
        title=title,
        status=status,
        detail=detail,
        request_id=request_id or None,
        **extra,
    )


def problem_json(body: Problem) -> dict[str, Any]:
    """A problem as sent: the fields it has (no nulls for those it has not)."""
    return body.model_dump(mode="json", exclude_none=True)


def problem(
    request: Request, status: int, slug: str, title: str, detail: str, **extra: Any
) -> JSONResponse:
    """A problem+json response to ``request``."""
    request_id = request_id_of(request)
    body = problem_body(status, slug, title, detail, request_id, **extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if request_id:  # a 500 is answered outside the middleware that adds it to the others
        headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(
        problem_json(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def request_id_of(request: Request) -> str | None:
    """The id :class:`~facekey.service.requests.RequestIdMiddleware` gave the request."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def status_of(exc: errors.FacekeyError) -> int:
    """The HTTP status of a facekey error (500 for anything not caused by the request)."""
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 500)


def _slug(exc: Exception) -> str:
    name = type(exc).__name__
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


async def _facekey_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.FacekeyError)
    status = status_of(exc)
    if status >= 500 and status != 503:
        return await _internal_error(request, exc)
    response = problem(request, status, _slug(exc), _title(exc), str(exc), **_extra(request, exc))
    if isinstance(exc, errors.RetryLater):
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
    if isinstance(exc, errors.RetryLater):
        return {"retry_after": exc.retry_after_s}
    return {}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        FieldProblem(loc=list(e.get("loc", ())), msg=e.get("msg", ""), type=e.get("type", ""))
        for e in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems)
    return problem(request, 422, "invalid-request", "Invalid request", detail, errors=problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(request, exc.status_code, "http-error", str(exc.detail), str(exc.detail))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Anything a route let escape: logged with its traceback and request id, answered 500."""
    log.error(
        "internal error on %s %s (request %s)",
        request.method,
        request.url.path,
        request_id_of(request),
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return problem(
        request,
        500,
        "internal-error",
        "Internal error",
        "the server could not do this; quote the request id when you report it",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map facekey errors, validation errors, HTTP errors and anything else to problem+json,
    and put :class:`Problem` in the OpenAPI components the routes' error answers refer to."""
    app.add_exception_handler(errors.FacekeyError, _facekey_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    _document_problems(app)


def _document_problems(app: FastAPI) -> None:
    # FastAPI documents a response model under the route's media type (application/json);
    # error bodies are problem+json, so their schema is added to the components here.
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            found = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(found.pop("$defs", {}))
            schemas["Problem"] = found
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
