"""GET /api/health: liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import StateDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=Health, responses={503: {"model": Health}})
def health(state: StateDep) -> JSONResponse:
    """Always answers; 200 when questions can be asked, 503 while the index is missing."""
    snapshot = state.pipeline.snapshot if state.pipeline else None
    body = Health(
        status="ok" if snapshot else "not ready",
        ready=snapshot is not None,
        detail=state.not_ready,
        documents=len(snapshot.documents) if snapshot else 0,
        chunks=len(snapshot.chunks) if snapshot else 0,
        embedding_model=state.settings.embedding_model,
        generator=state.generators.default if state.generators else state.settings.generator,
        generators=state.generators.available if state.generators else [],
    )
    return JSONResponse(body.model_dump(), status_code=200 if snapshot else 503)
