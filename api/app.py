"""The FastAPI app factory: models load once in the lifespan, routes read lifespan state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import errors
from api.routers import ask, documents, health, openai, page
from api.security import ApiKeyMiddleware
from api.state import AppState
from rag.config import Settings
from rag.errors import IndexStoreError, RagError
from rag.pipeline import Pipeline

logger = logging.getLogger(__name__)


def _load(settings: Settings) -> AppState:
    """Load the index and model; a missing or broken index leaves the app up but not ready."""
    from rag.service import make_embedder, open_pipeline

    embedder = make_embedder(settings)
    try:
        pipeline = open_pipeline(settings, embedder)
    except IndexStoreError as exc:
        logger.warning("not ready: %s", exc)
        return AppState(settings, None, str(exc), embedder)
    pipeline.warm_up()
    state = AppState(settings, pipeline, embedder=embedder)
    _warm_default_generator(state)
    return state


def _warm_default_generator(state: AppState) -> None:
    """Load the default generator's model at start-up rather than on the first question."""
    assert state.generators is not None
    try:
        state.generators.warm_up_default()
    except (RagError, OSError) as exc:  # the app stays up; questions to this generator get its error
        logger.warning("the default generator is not usable: %s", exc)


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    """Build the app; pass a pipeline to skip loading (tests), or settings to configure it."""
    resolved = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        state = AppState(resolved, pipeline, embedder=pipeline.embedder) if pipeline else _load(resolved)
        yield {"app": state}

    app = FastAPI(
        title="rag-news",
        summary="Cited answers over Chinese (and any-language) news articles.",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    if keys := resolved.api_key_set():
        app.add_middleware(ApiKeyMiddleware, keys=keys)
    app.include_router(health.router)
    app.include_router(ask.router)
    app.include_router(documents.router)
    app.include_router(openai.router)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    return app
