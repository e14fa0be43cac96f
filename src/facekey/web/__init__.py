"""Web pages for people, on the API's app: enrolment with the webcam (``/enrol``), the
customer's privacy portal (``/me``) and the operator's console (``/admin``).

Server-rendered Jinja2 templates and a little plain JavaScript, every asset served by facekey
under ``/static``; needs the ``facekey[web]`` extra (Jinja2). The pages call the flows, as the
API's routes do; their protections are in :mod:`facekey.web.security`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from facekey.errors import MissingExtra

__all__ = ["install_web"]

log = logging.getLogger(__name__)


def install_web(app: FastAPI) -> bool:
    """Add the pages to ``app``; False (and a log line saying what to install) without Jinja2."""
    from fastapi.staticfiles import StaticFiles

    from facekey.web import admin, enrol, portal
    from facekey.web.pages import STATIC_DIR, Pages
    from facekey.web.security import SecurityHeadersMiddleware

    try:
        app.state.web_pages = Pages()
    except MissingExtra as exc:
        log.warning("web pages off: %s", exc)
        return False
    app.state.web_det_cache = {}
    for router in (enrol.router, portal.router, admin.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeadersMiddleware)
    return True
