"""FastAPI dependencies: the platform of this process and the caller's principal."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Final

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import JsonValue
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUploadFile

from facekey.errors import ImageTooLarge, InvalidRequest
from facekey.flows.auth import Principal, authenticate
from facekey.flows.devices import DeviceIdentity, verify_terminal_call
from facekey.flows.platform import Platform
from facekey.security.api_keys import Scope
from facekey.service.openapi import bearer


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_principal(
    request: Request,
    platform: PlatformDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller of ``Authorization: Bearer <key>``; 401 without a valid key."""
    token = credentials.credentials.strip() if credentials is not None else None
    principal = await run_in_threadpool(authenticate, platform, token)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def scoped(*scopes: Scope) -> Callable[[Principal], Principal]:
    """A dependency admitting keys of ``scopes`` (and admin) before the body is parsed."""

    def check(principal: PrincipalDep) -> Principal:
        principal.require(*scopes)
        return principal

    return check


EnrolKey = Annotated[Principal, Depends(scoped(Scope.ENROL))]
TerminalKey = Annotated[Principal, Depends(scoped(Scope.TERMINAL))]
VerifyKey = Annotated[Principal, Depends(scoped(Scope.TERMINAL, Scope.ENROL))]
PrivacyKey = Annotated[Principal, Depends(scoped(Scope.PRIVACY))]
AdminKey = Annotated[Principal, Depends(scoped(Scope.ADMIN))]

#: An id as the API gave it (a UUID, a purpose): no control characters, which no id has and
#: PostgreSQL cannot even compare (a NUL), so such a path is a 422, not a lookup.
ID_PATTERN: Final = r"^[^\x00-\x1f\x7f]+$"
PathId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
#: The same rule for an id in a JSON body.
ID_TEXT: Final = re.compile(r"[^\x00-\x1f\x7f]{1,64}")


async def read_upload(upload: StarletteUploadFile, platform: Platform, *, name: str) -> bytes:
    """The bytes of one uploaded image, refused past the byte limit without reading it all."""
    limit = platform.settings.images.max_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"{name}: the image is larger than {limit} bytes")
    return data


async def signed_device(
    request: Request, platform: Platform, principal: Principal, body: bytes | None = None
) -> DeviceIdentity:
    """The terminal whose HMAC signature over this request (the raw body) verifies."""
    raw = await request.body() if body is None else body
    path = _request_target(request)
    return await run_in_threadpool(
        lambda: verify_terminal_call(
            platform.database,
            platform.vault,
            principal,
            headers=request.headers,
            method=request.method,
            path=path,
            body=raw,
        )
    )


def _request_target(request: Request) -> str:
    """The path and query as sent (and signed): percent-encoded, as ``raw_path`` keeps them;
    ``request.url.path`` is decoded, so an id with a space or a non-ASCII letter would not
    verify."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return path + (f"?{query}" if query else "")


#: JSON bodies nest at most this deep (Python's parser would recurse past its limit).
MAX_JSON_DEPTH = 16


def json_object(body: bytes, *, max_bytes: int) -> dict[str, JsonValue]:
    """A request body that must be one JSON object, small and shallow; else 422."""
    if len(body) > max_bytes:
        raise InvalidRequest(f"the body is limited to {max_bytes} bytes of JSON")
    depth = deepest = 0
    for byte in body:  # before parsing: a deep nesting must never reach the parser
        depth += (byte in b"[{") - (byte in b"]}")
        deepest = max(deepest, depth)
    if deepest > MAX_JSON_DEPTH:
        raise InvalidRequest(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("the body must be JSON") from exc
    if not isinstance(parsed, dict):
        raise InvalidRequest("the body must be a JSON object")
    return parsed


async def single_image(request: Request) -> None:
    """Refuse a form that carries the ``image`` file more than once (not a silent pick)."""
    one_upload(await request.form(), "image")


def one_upload(form: FormData, name: str) -> StarletteUploadFile | None:
    """The file ``name`` of a form, None without one; refused when sent twice or as text."""
    values = form.getlist(name)
    if len(values) > 1:
        raise InvalidRequest(f"send one {name}, not several")
    if not values:
        return None
    if not isinstance(values[0], StarletteUploadFile):
        raise InvalidRequest(f"{name} must be a file")
    return values[0]


def form_text(value: str | None, name: str, *, max_length: int = 4096) -> str | None:
    """A text form field, stripped; refused when too long."""
    if value is None:
        return None
    if len(value) > max_length:
        raise InvalidRequest(f"{name} is longer than {max_length} characters")
    if "\x00" in value:  # no field holds one, and PostgreSQL cannot store or compare it
        raise InvalidRequest(f"{name} contains a NUL character")
    return value.strip() or None
