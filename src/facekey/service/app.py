"""The FastAPI app factory: long-lived objects are built in the lifespan, never at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from facekey import __version__
from facekey.config import Settings
from facekey.flows.devices import NoncePruning
from facekey.flows.galleries import SnapshotSchedule
from facekey.flows.platform import Platform
from facekey.gallery.index import limit_faiss_threads
from facekey.imaging import return_large_buffers
from facekey.service.fleet_metrics import FleetCollector
from facekey.service.limits import BodyLimitMiddleware
from facekey.service.metrics import Metrics, MetricsMiddleware
from facekey.service.openapi import install_docs
from facekey.service.problems import install_problem_handlers
from facekey.service.requests import RequestIdMiddleware
from facekey.service.routes import checkout, fleet, identify, liveness, ops, subjects
from facekey.web import install_web

log = logging.getLogger(__name__)

#: Room for the multipart envelope and form fields around the largest allowed images.
_BODY_SLACK = 64 * 1024


def create_app(settings: Settings | None = None, *, platform: Platform | None = None) -> FastAPI:
    """The facekey API. ``platform`` may be given (tests share one); else built at start-up."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limit_faiss_threads(1)
        return_large_buffers()
        owned = platform is None
        app.state.platform = platform or Platform.open(settings)
        networks = app.state.platform.warm()
        log.info("facekey ready: %d networks, default engine %s", networks, settings.engine)
        schedule = SnapshotSchedule(
            app.state.platform.settings, app.state.platform.galleries.snapshots
        )
        schedule.start()
        pruning = NoncePruning(app.state.platform.database)
        pruning.start()
        try:
            yield
        finally:
            pruning.stop()
            schedule.stop()
            if owned:
                app.state.platform.close()

    app = FastAPI(
        title="facekey",
        version=__version__,
        summary="Open face authentication: opt-in enrolment, identification, erasure.",
        lifespan=lifespan,
        docs_url=None,  # served from the package by install_docs, not from a CDN
        redoc_url=None,
    )
    install_docs(app)
    app.state.metrics = Metrics()
    app.state.metrics.registry.register(
        FleetCollector(lambda: getattr(app.state, "platform", None))
    )
    install_problem_handlers(app)
    routers = (subjects, identify, checkout, liveness, fleet, ops)
    for module in routers:
        app.include_router(module.router)
    install_web(app)
    max_body = settings.images.max_bytes * settings.max_images_per_request + _BODY_SLACK
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)  # the outermost: every answer carries the id
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker process builds its own platform)."""
    return create_app(Settings())
