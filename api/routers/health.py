"""Health and metrics: /api/health (what is served), the live and ready probes, /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import StateDep
from api.errors import public
from api.schemas import Health
from api.security import key_accepted

router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=Health, responses={503: {"model": Health}})
@router.head("/api/health", include_in_schema=False)
async def health(request: Request, state: StateDep) -> JSONResponse:
    """Always answers, without waiting for a thread: 200 when questions can be asked, 503
    while the index is missing. With API keys set, a caller without one learns only
    whether the service is ready, not what it holds or where."""
    snapshot = state.pipeline.snapshot if state.pipeline else None
    status = 200 if snapshot else 503
    settings = state.settings
    keys = settings.api_key_set() | settings.read_key_set()
    if keys and not key_accepted(request.headers.get("authorization", ""), keys):
        return JSONResponse({"status": "ok" if snapshot else "not ready", "ready": snapshot is not None}, status)
    body = Health(
        status="ok" if snapshot else "not ready",
        ready=snapshot is not None,
        detail=public(state.not_ready),
        documents=len(snapshot.documents) if snapshot else 0,
        chunks=len(snapshot.chunks) if snapshot else 0,
        embedding_model=settings.embedding_id,
        store=snapshot.manifest.store if snapshot else settings.store,
        generator=state.generators.default if state.generators else settings.generator,
        generators=state.generators.available if state.generators else [],
    )
    return JSONResponse(body.model_dump(), status_code=status)


@router.get("/api/health/live", include_in_schema=True)
@router.head("/api/health/live", include_in_schema=False)
async def live() -> JSONResponse:
    """Liveness: the process answers (restart it when this fails). Never waits for a thread."""
    return JSONResponse({"status": "ok"})


@router.get("/api/health/ready", responses={503: {"description": "not ready: no index, or shutting down"}})
@router.head("/api/health/ready", include_in_schema=False)
async def ready(state: StateDep) -> JSONResponse:
    """Readiness: questions can be asked now (route traffic here only then): 503 while there
    is no index or the server is shutting down."""
    if state.pipeline is None:
        return JSONResponse({"status": "not ready", "detail": public(state.not_ready) or "no index"}, status_code=503)
    if state.stopping.is_set():
        return JSONResponse({"status": "not ready", "detail": "shutting down"}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    """Prometheus metrics of this process (api.observability)."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
