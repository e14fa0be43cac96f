"""Health, readiness and metrics."""

from __future__ import annotations

import os
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import text

from facekey.service.deps import PlatformDep

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """The worker answers: its database answers and its default engine is loaded."""

    status: Literal["ready"]
    engine: str
    worker: int


class NotReady(BaseModel):
    """The worker cannot answer yet; ``reason`` names the failure's type."""

    status: Literal["not ready"]
    reason: str


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="The database answers and the default engine is loaded",
    response_model=Readiness,
    responses={503: {"model": NotReady, "description": "Not ready"}},
)
async def readyz(platform: PlatformDep) -> Readiness | JSONResponse:
    def check() -> bool:
        with platform.database.session() as session:
            session.execute(text("SELECT 1"))
        return True

    try:
        await run_in_threadpool(check)
    except Exception as exc:  # any failure means "not ready"
        body = NotReady(status="not ready", reason=type(exc).__name__)
        return JSONResponse(body.model_dump(), status_code=503)
    return Readiness(status="ready", engine=platform.reader.engine_key, worker=os.getpid())


@router.get(
    "/metrics", summary="Prometheus metrics of this worker", response_class=PlainTextResponse
)
async def metrics(request: Request) -> Response:
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4")
