"""What an operator sees: request ids, Prometheus metrics, and log lines that carry both.

- Every request gets an id: the client's ``X-Request-ID`` when it is a plain token, else a
  new one. It is in the response's ``X-Request-ID`` header, in error bodies and in every log
  line written while the request runs.
- ``GET /metrics`` serves this app's Prometheus registry: requests by route and status,
  their latency, each answer stage's latency, answers by outcome, the language model's
  tokens per second, the queues, the index size and the process (RSS, CPU, open files).
- ``RAG_LOG_FORMAT=json`` writes one JSON object per log line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.context import request_id
from api.errors import UNEXPECTED, error_response, log_unexpected
from rag.answer.generators import Generators
from rag.answer.retrieval import Pipeline
from rag.text import printable
from rag.types import Answer

logger = logging.getLogger(__name__)
access = logging.getLogger("rag.access")
REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# Seconds: a question answered extractively takes milliseconds, one answered by the local LLM seconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STAGES = ("rewrite_ms", "embed_ms", "search_ms", "first_token_ms", "generate_ms", "total_ms")


def abstain_kind(reason: str) -> str:
    """A bounded label for an abstention reason: its first three English words, which are
    the reason's fixed wording ("no good sentence gives a figure in 只" -> "no good sentence");
    names and events from the question come later in a reason, so they never become labels."""
    words = [w for w in reason.split(":", 1)[0].split() if w.isascii() and w.isalpha()]
    return " ".join(words[:3]).lower() or "other"


def answer_outcome(answer: Answer) -> str:
    """answered, abstained, withheld (the model's draft was cut where it stopped checking
    out) or fallback (another generator answered, rag.answer.generators.fallback)."""
    if answer.abstained:
        return "abstained"
    if any("withheld" in w for w in answer.warnings):
        return "withheld"
    if any("answer instead" in w for w in answer.warnings):
        return "fallback"
    return "answered"


class _Gauge(Protocol):
    @property
    def in_use(self) -> int: ...


class _Queue(Protocol):
    @property
    def admitted(self) -> int: ...


class Watched(Protocol):
    """What the metrics read of a running app (``api.state.AppState``) at every scrape."""

    @property
    def pipeline(self) -> Pipeline | None: ...

    @property
    def generators(self) -> Generators | None: ...

    @property
    def answers(self) -> _Gauge: ...

    @property
    def writes(self) -> _Queue: ...

    @property
    def parses(self) -> _Queue: ...


class _StateCollector(Collector):
    """Gauges read from the app's state at scrape time: the index and the queues."""

    def __init__(self, state: Watched) -> None:
        self._state = state

    def collect(self) -> Iterable[GaugeMetricFamily]:
        state = self._state
        snapshot = state.pipeline.snapshot if state.pipeline else None
        gauges = (
            ("rag_index_documents", "Documents in the live index", len(snapshot.documents) if snapshot else 0),
            ("rag_index_chunks", "Chunks in the live index", len(snapshot.chunks) if snapshot else 0),
            ("rag_index_ready", "1 when questions can be asked", 1 if snapshot else 0),
            ("rag_llm_answers_in_flight", "Language-model answers running or waiting", state.answers.in_use),
            ("rag_index_updates_queued", "Uploads and deletes running or waiting", state.writes.admitted),
            ("rag_uploads_being_read", "Uploaded files being read (parsed) or waiting to be", state.parses.admitted),
            ("rag_worker_pid", "The id of the process that answered this scrape (rag serve --workers)", os.getpid()),
        )
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(name, documentation, value)


class Metrics:
    """One app's Prometheus registry and the metrics the app records into it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._state: _StateCollector | None = None
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "rag_http_requests", "HTTP requests by route, method and status", ["route", "method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "rag_http_request_seconds", "HTTP request latency by route (to the last byte)", ["route"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.stage_seconds = Histogram(
            "rag_answer_stage_seconds", "Answer latency by stage (since the question arrived, for first_token "
            "and total)", ["stage", "generator"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.answers = Counter(
            "rag_answers", "Answers by generator, outcome and abstention reason", ["generator", "outcome", "reason"],
            registry=self.registry,
        )  # fmt: skip
        self.tokens_per_second = Histogram(
            "rag_llm_tokens_per_second", "Language-model output tokens per second of generation", ["generator"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500), registry=self.registry,
        )  # fmt: skip

    def watch(self, state: Watched) -> None:
        """Report the state's index and queues at every scrape; each offered generator's
        series exist from the start (at zero), so an alert sees a rate, not an absent series."""
        self._state = _StateCollector(state)
        self.registry.register(self._state)
        for generator in state.generators.available if state.generators else ():
            self.tokens_per_second.labels(generator)
            self.answers.labels(generator, "answered", "")

    def render(self) -> bytes:
        """The scrape, in Prometheus' text format. Under ``rag serve --workers`` the counters
        and histograms are every worker's together (prometheus-client's multiprocess mode,
        which the serve command turns on); the gauges and process metrics are the answering worker's."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        ProcessCollector(registry=registry)
        if self._state is not None:
            registry.register(self._state)
        return generate_latest(registry)

    def record_answer(self, answer: Answer, generator: str) -> None:
        """An answer's outcome, stage latencies and the model's speed."""
        outcome = answer_outcome(answer)
        reason = abstain_kind(answer.abstain_reason) if answer.abstained else ""
        self.answers.labels(generator, outcome, reason).inc()
        for stage in _STAGES:
            if stage in answer.timings_ms:
                self.stage_seconds.labels(stage.removesuffix("_ms"), generator).observe(answer.timings_ms[stage] / 1000)
        generate_s = answer.timings_ms.get("generate_ms", 0.0) / 1000
        if answer.usage.completion_tokens and generate_s > 0:
            self.tokens_per_second.labels(generator).observe(answer.usage.completion_tokens / generate_s)


class RequestContext:
    """The outermost middleware: gives the request its id (for the response, errors and logs)
    and counts it, by its route's path template so that ids in paths do not become labels."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1")
        rid = given if _CLIENT_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = int(message["status"]), True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        except Exception as exc:
            if status != 500 or responded:
                raise
            # Handled here, inside the request, so the log line and the body carry its id.
            log_unexpected(logger, exc)
            from starlette.requests import Request

            await error_response("internal_error", UNEXPECTED, 500, Request(scope))(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            template = route_template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"  # any token parses as a method
            self._metrics.requests.labels(template, method, str(status)).inc()
            self._metrics.request_seconds.labels(template).observe(seconds)
            # The access line, written inside the request so that it carries the request's id.
            level = logging.WARNING if status >= 500 else logging.INFO
            access.log(
                level, "%s %s %d %.1f ms (route %s)", scope["method"], scope["path"], status, seconds * 1000, template
            )
            request_id.reset(token)


def route_template(scope: Scope) -> str:
    """The route a request matched, as its template (``/api/documents/{doc_id}``): a mounted
    app (the page's ``/static`` files) by its prefix; ``unmatched`` when none matched."""
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return str(route.path)
    mounted = str(scope.get("root_path", ""))
    if mounted and scope.get("endpoint") is not None:
        return f"{mounted}/{{path}}"
    return "unmatched"


class RequestIdFilter(logging.Filter):
    """Puts the running request's id on every log record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class TextFormatter(logging.Formatter):
    """The text log: one line per message, whatever a client put in it (a ``%0a`` in a path
    would otherwise start a forged line): control characters are escaped; a traceback keeps
    its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id (and the traceback)."""

    converter = time.gmtime  # type: ignore[assignment]

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_config(log_format: str, level: str) -> dict[str, Any]:
    """uvicorn's logging configuration with request ids on every line, as text or JSON."""
    text = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
    formatter: dict[str, Any] = (
        {"()": "api.observability.JsonFormatter"}
        if log_format == "json"
        else {"()": "api.observability.TextFormatter", "fmt": text}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "main", "filters": ["request_id"]}
    limited = {"handlers": [], "propagate": True, "filters": ["rate_limit"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "api.observability.RequestIdFilter"},
            # A repeated library message at most once per 10 s; not rag.access: each line names its request.
            "rate_limit": {"()": "api.cli.RateLimitFilter"},
        },
        "formatters": {"main": formatter},
        "handlers": {"main": {**handler, "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["main"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": limited,
            "asyncio": limited,
            "api.errors": limited,  # unexpected errors' tracebacks
            "api.observability": limited,
            "uvicorn.access": {"handlers": [], "propagate": True},
            # Libraries that narrate their normal work at INFO (faiss names the CPU features it
            # loaded, httpx each request) or warn about input the loaders report themselves
            # (pypdf: a PDF without its EOF marker, read anyway): only their errors show.
            **{name: {"level": "WARNING"} for name in ("faiss", "httpx", "httpcore", "bm25s", "jieba", "multipart")},
            "pypdf": {"level": "ERROR"},
        },
    }
