"""Request dependencies: typed access to lifespan state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.state import AppState
from rag.answering import Answerer


def get_state(request: Request) -> AppState:
    state: AppState = request.state.app
    return state


def get_answerer(state: Annotated[AppState, Depends(get_state)]) -> Answerer:
    """The answer path over the loaded index, or 503 while there is none."""
    return state.answerer()


StateDep = Annotated[AppState, Depends(get_state)]
AnswererDep = Annotated[Answerer, Depends(get_answerer)]
