"""``rag serve``: run the HTTP service with uvicorn (registered through ``rag.commands``).

What uvicorn does not bound by itself is bounded here: connections (``limit_concurrency``,
and as many file descriptors as the system allows), connections that never send a whole
request (closed after ``RAG_HEADER_TIMEOUT_S``), and log lines repeated in a storm.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import logging
import os
import resource
import tempfile
import time
from typing import Any, ClassVar

from rag.config import Settings
from rag.errors import ConfigError

# The same log message at most once per this many seconds (with a count of the rest).
_LOG_EVERY_S = 10.0


class RateLimitFilter(logging.Filter):
    """Passes a message template once per ``every_s`` seconds, then says how many it held back."""

    def __init__(self, every_s: float = _LOG_EVERY_S) -> None:
        super().__init__()
        self._every_s = every_s
        self._last: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = f"{record.name}:{record.msg}"
        last, held = self._last.get(key, (float("-inf"), 0))
        if now - last < self._every_s:
            self._last[key] = (last, held + 1)
            return False
        if held:
            record.msg = f"{record.msg} ({held} more like it in the last {self._every_s:.0f} s)"
        self._last[key] = (now, 0)
        if len(self._last) > 1000:  # a bounded memory of messages
            self._last.clear()
        return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str) -> None:
    """Without API keys the service is for this machine: refuse to serve a network with it."""
    keyed = settings.api_key_set() or settings.read_key_set()
    if not keyed and not settings.allow_unauthenticated_network and not _is_loopback(host):
        raise ConfigError(
            f"refusing to serve {host} without API keys: anyone who can reach it could change the documents. "
            "Set RAG_API_KEYS (and RAG_READ_API_KEYS), or RAG_ALLOW_UNAUTHENTICATED_NETWORK=true "
            "if the network is yours"
        )


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard one; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def _protocol() -> type:
    """uvicorn's HTTP/1.1 protocol, closing a connection whose first request has not arrived
    within RAG_HEADER_TIMEOUT_S (idle and half-sent connections would stay forever). A class
    of this module, not of a closure: ``--workers`` sends it to each worker by name."""
    return TimedH11Protocol


try:  # uvicorn is a dependency of the service, not of this module's importers
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        """Also caps the connections one client address holds (RAG_MAX_CONNECTIONS_PER_CLIENT):
        one more is closed at once, so hundreds of idle sockets from one client cannot take the
        server's RAG_MAX_CONNECTIONS from everyone else (past those uvicorn answers 503)."""

        _open: ClassVar[dict[str, int]] = {}  # connections by client address, in this process

        @staticmethod
        @functools.cache
        def _settings() -> tuple[float, int]:
            settings = Settings()
            return settings.header_timeout_s, settings.max_connections_per_client

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._first_request_timer: asyncio.TimerHandle | None = None
            timeout_s, per_client = self._settings()
            self._address = self.client[0] if self.client else ""
            held = self._open[self._address] = self._open.get(self._address, 0) + 1
            if held > per_client:
                transport.abort()
                return
            self._first_request_timer = self.loop.call_later(timeout_s, self._no_request_in_time)

        def _no_request_in_time(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._first_request_timer is not None:
                self._first_request_timer.cancel()
            left = self._open.pop(self._address, 1) - 1
            if left > 0:
                self._open[self._address] = left
            super().connection_lost(exc)

except ImportError:  # pragma: no cover
    pass


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Start uvicorn on the app; models load once at start-up."""
    import uvicorn

    from api.app import create_app

    check_bind(settings, args.host)
    files = raise_open_file_limit()
    # Leave descriptors for the index, models and logs; past the cap uvicorn answers 503.
    connections = max(8, min(settings.max_connections, files - 64))
    from api.observability import log_config

    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "log_config": log_config(settings.log_format, args.log_level),
        "access_log": False,  # api.observability writes the access lines, with request ids
        # SIGTERM: stop accepting, let answers in progress (streams included) finish, then exit.
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
        "limit_concurrency": connections,
        "timeout_keep_alive": 5,
        "http": _protocol(),
        "h11_max_incomplete_event_size": 64 * 1024,
    }
    if args.workers > 1:
        # Each worker builds its app from the same settings (the environment) and serves the
        # newest index version (api.app watches for it); uploads are serialised across them.
        # Their metrics are summed through files in a folder of this run (api.observability).
        with tempfile.TemporaryDirectory(prefix="rag-metrics-") as metrics:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics
            try:
                uvicorn.run("api.app:create_app", factory=True, workers=args.workers, **options)
            finally:
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    else:
        uvicorn.run(create_app(settings), **options)
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``serve`` to the ``rag`` command line."""
    parser = commands.add_parser("serve", help="run the HTTP service (index with `rag index` first)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind; other than loopback needs API keys")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes serving the same index (each loads the model: memory x N)"
    )
    parser.set_defaults(handler=serve)
