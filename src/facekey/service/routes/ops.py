"""Health, readiness and metrics."""

from __future__ import annotations

import json
import os

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text

from facekey.service.deps import PlatformDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers and the default engine is loaded")
async def readyz(platform: PlatformDep) -> Response:
    def check() -> bool:
        with platform.database.session() as session:
            session.execute(text("SELECT 1"))
        return True

    try:
        await run_in_threadpool(check)
    except Exception as exc:  # any failure means "not ready"
        return Response(
            f'{{"status": "not ready", "reason": "{type(exc).__name__}"}}',
            status_code=503,
            media_type="application/json",
        )
    body = {"status": "ready", "engine": platform.reader.engine_key, "worker": os.getpid()}
    return Response(json.dumps(body), media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics of this worker")
async def metrics(request: Request) -> Response:
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4")
