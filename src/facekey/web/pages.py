"""Rendering: the Jinja2 environment of the pages' templates, autoescaped, built once per app."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse

from facekey.errors import MissingExtra

PACKAGE_DIR: Final = Path(str(resources.files("facekey.web")))
TEMPLATES_DIR: Final = PACKAGE_DIR / "templates"
STATIC_DIR: Final = PACKAGE_DIR / "static"


class Pages:
    """The templates of the pages, rendered to HTML responses."""

    def __init__(self) -> None:
        try:
            import jinja2
        except ImportError as exc:
            raise MissingExtra(
                "the web pages need Jinja2: install facekey[web] (pip install 'facekey[web]')"
            ) from exc
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["when"] = when
        self._env.filters["rate"] = rate

    def render(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        """``name`` rendered with ``context`` (and the request's path, for navigation)."""
        template = self._env.get_template(name)
        body = template.render(path=request.url.path, **context)
        return HTMLResponse(body, status_code=status)


def when(value: datetime | None) -> str:
    """A timestamp as people read it (UTC, to the minute)."""
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def rate(value: float | None) -> str:
    """A small rate: 1e-05 → '1 in 100,000'."""
    if value is None:
        return "—"
    if value <= 0:
        return "0"
    return f"{value:.1e} (1 in {round(1 / value):,})"


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.web_pages
    return pages
