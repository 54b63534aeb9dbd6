"""The FastAPI app factory: models load once in the lifespan, routes read lifespan state."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api import errors
from api.observability import Metrics, RequestContext
from api.routers import ask, documents, health, openai, page
from api.security import LOOPBACK_HOSTS, Policy, RequestGuard
from api.state import AppState
from rag.answer.retrieval import Pipeline
from rag.config import Settings
from rag.errors import IndexMissing, IndexStoreError, RagError
from rag.index.snapshot import live_version
from rag.ingest.sandbox import stop_all

logger = logging.getLogger(__name__)


def _load(settings: Settings) -> AppState:
    """Load the index and model; a missing or broken index leaves the app up but not ready."""
    from rag.service import make_embedder, open_pipeline

    embedder = make_embedder(settings)
    version = live_version(settings.index_dir)
    try:
        pipeline = open_pipeline(settings, embedder)
    except IndexStoreError as exc:
        logger.warning("not ready: %s", exc)
        state = AppState(settings, None, str(exc), embedder)
        if isinstance(exc, IndexMissing):  # nothing was ever indexed: an interrupted first upload is undone
            with state.library.writing():  # other workers start too
                state.library.recover()
        return state
    pipeline.warm_up()
    state = AppState(settings, pipeline, embedder=embedder, version=version)
    # A change to the uploads that a crash interrupted is finished or undone before serving.
    with state.library.writing():  # other workers start too; read what is live now
        state.library.recover()
    _warm_default_generator(state)
    return state


async def _watch_index(state: AppState) -> None:
    """Serve the newest index: every RAG_INDEX_POLL_S, load the live version if another
    process (``rag index``, another worker) made a new one live. This process's own uploads
    reload as they finish."""
    while True:
        await asyncio.sleep(state.settings.index_poll_s)
        if state.writes.admitted:
            continue
        try:
            await asyncio.to_thread(state.reload_if_changed)
        except Exception:  # the watcher must outlive any one failure
            logger.exception("reloading the index failed")


def _also_on_termination(callback: Callable[[], None]) -> None:
    """Run ``callback`` as soon as SIGTERM or SIGINT arrives, then the handler already there
    (uvicorn's, which begins the graceful shutdown): uploads being read are stopped at once
    instead of holding their connections open for the graceful timeout. Only where signals
    can be handled (the main thread of ``rag serve``)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if not callable(previous):
            continue

        def handler(signum: int, frame: object, previous: Callable[..., object] = previous) -> None:
            callback()
            previous(signum, frame)

        signal.signal(number, handler)


def _stop_reading(state: AppState) -> None:
    """Shutdown begins: no more uploads are read; the ones being read are killed (they fail)."""
    state.stopping.set()
    state.parses.shutdown(wait=False)
    stop_all()


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

    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        if pipeline:
            state = AppState(resolved, pipeline, embedder=pipeline.embedder, version=live_version(resolved.index_dir))
        else:
            state = _load(resolved)
        state.metrics = metrics
        metrics.watch(state)
        watcher = asyncio.create_task(_watch_index(state)) if resolved.index_poll_s > 0 else None
        _also_on_termination(lambda: _stop_reading(state))
        try:
            yield {"app": state}
        finally:
            _stop_reading(state)
            if watcher is not None:
                watcher.cancel()
            state.writes.shutdown()

    app = FastAPI(
        title="rag-news",
        summary="Cited answers over Chinese (and any-language) news articles.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
    )
    errors.install(app)
    app.add_middleware(RequestGuard, policy=policy(resolved))
    app.add_middleware(RequestContext, metrics=metrics)  # outermost: every response gets an id
    _offline_docs(app)
    app.include_router(health.router)
    app.include_router(ask.router)
    app.include_router(documents.router)
    app.include_router(openai.router)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    return app


def policy(settings: Settings) -> Policy:
    """Who may do what (``api.security``), from the settings."""
    write_keys, read_keys = settings.api_key_set(), settings.read_key_set()
    if settings.allowed_hosts.strip() == "*":
        hosts: frozenset[str] = frozenset()
    elif settings.allowed_hosts.strip():
        hosts = frozenset(h.strip().lower().strip("[]") for h in settings.allowed_hosts.split(",") if h.strip())
    elif write_keys or read_keys or settings.allow_unauthenticated_network:
        hosts = frozenset()
    else:
        hosts = LOOPBACK_HOSTS
    return Policy(hosts, write_keys, read_keys, settings.max_request_bytes, settings.max_upload_bytes)


def _offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files served from here (fastapi-offline ships them), so the
    page works without internet access."""
    try:
        import fastapi_offline
    except ImportError:
        return
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/static/docs", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="rag-news API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
        )
