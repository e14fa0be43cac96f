"""The API's description and its pages: security schemes, and /docs served from the package.

/docs is Swagger UI from the ``swagger-ui-bundle-v2`` wheel, mounted at ``/docs/assets``: it
works on a machine with no internet, and the browser fetches nothing from a CDN. ReDoc's page
would need a CDN, so there is none.

Two kinds of credentials are declared so /docs has an Authorize button and clients know what
to send: the API key (``Authorization: Bearer fk_…``) on every route but the health checks,
and, on the routes a terminal signs, the four signature headers. All the schemes of a route
are required together (one security requirement), unlike FastAPI's default of one
requirement per scheme, which reads as "any one of them".
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from facekey.security.signing import (
    HEADER_DEVICE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
)

DOCS_URL: Final = "/docs"
ASSETS_URL: Final = "/docs/assets"

#: ``Authorization: Bearer <key>``: the key's scope (enrol, terminal, privacy, admin) decides
#: the routes it opens. Declared only; the key is checked by ``deps.get_principal``.
bearer = HTTPBearer(
    scheme_name="apiKey",
    bearerFormat="fk_<scope>_<key id>_<secret>",
    description="A network's API key, as `facekey admin create-network` printed it.",
    auto_error=False,
)

_SIGNATURE_HEADERS: Final = {
    HEADER_DEVICE: ("deviceId", "The terminal's device id."),
    HEADER_TIMESTAMP: ("deviceTimestamp", "Unix seconds when the request was signed."),
    HEADER_NONCE: ("deviceNonce", "16-64 url-safe characters, never reused by the device."),
    HEADER_SIGNATURE: (
        "deviceSignature",
        "base64url HMAC-SHA256 of METHOD, PATH, SHA256(body), timestamp and nonce, one per "
        "line, under the device secret (see docs: terminal signing).",
    ),
}
_device_id, _timestamp, _nonce, _signature = (
    APIKeyHeader(name=header, scheme_name=scheme, description=text, auto_error=False)
    for header, (scheme, text) in _SIGNATURE_HEADERS.items()
)


def signature_headers(
    _device: Annotated[str | None, Depends(_device_id)],
    _time: Annotated[str | None, Depends(_timestamp)],
    _nonce_value: Annotated[str | None, Depends(_nonce)],
    _mac: Annotated[str | None, Depends(_signature)],
) -> None:
    """Declares a terminal's signature headers on a route (``dependencies=[SIGNED]``).

    The signature covers the raw body, so it is verified where the body is read
    (``deps.signed_device``), not here.
    """


SIGNED: Final = Depends(signature_headers)


def install_docs(app: FastAPI) -> None:
    """Serve /docs and its assets from the package, and describe the security schemes."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _schemes_together(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _schemes_together(schema: dict[str, Any]) -> dict[str, Any]:
    """One security requirement per operation, naming every scheme it needs."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            requirements = operation.get("security") if isinstance(operation, dict) else None
            if requirements:
                merged: dict[str, list[str]] = {}
                for requirement in requirements:
                    merged |= requirement
                operation["security"] = [merged]
    return schema
