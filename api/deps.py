"""Request dependencies: typed access to lifespan state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.state import AppState
from rag.errors import IndexMissing
from rag.pipeline import Pipeline


def get_state(request: Request) -> AppState:
    state: AppState = request.state.app
    return state


def get_pipeline(state: Annotated[AppState, Depends(get_state)]) -> Pipeline:
    """The loaded pipeline, or 503 (through IndexMissing) while there is no index."""
    if state.pipeline is None:
        raise IndexMissing(state.not_ready or "the index is not loaded")
    return state.pipeline


StateDep = Annotated[AppState, Depends(get_state)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
