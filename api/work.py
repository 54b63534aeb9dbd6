"""Bounded work: index writes on a thread of their own, and a cap on language-model answers.

A request that finds its queue full gets 503 with ``Retry-After`` at once (``Busy``),
instead of holding one of the threads every other request needs (health, questions).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request

from rag.errors import Busy, Interrupted

T = TypeVar("T")
# How often a waiting write looks whether its client is still there.
_POLL_S = 0.25


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class WriteQueue:
    """Index updates, one at a time on one thread, with at most ``limit`` admitted."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._admitted = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-writer")

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self._limit:
                raise Busy(
                    f"{self._admitted} uploads or deletes are already queued (RAG_MAX_PENDING_WRITES); "
                    "try again shortly",
                    retry_after_s=10,
                )
            self._admitted += 1

    @property
    def admitted(self) -> int:
        """Updates running or waiting."""
        return self._admitted

    def _leave(self, _: object) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(self, job: Callable[[threading.Event], T], request: Request | None = None) -> T:
        """Run ``job(stop)`` on the writer thread. If the client goes away first, ``stop`` is
        set (a job not started never runs; a running one stops at its next check)."""
        self._admit()
        stop = threading.Event()
        # The request's context (its id, for log lines) goes with the job to the writer thread.
        future: Future[T] = self._executor.submit(contextvars.copy_context().run, job, stop)
        future.add_done_callback(self._leave)
        waiting = asyncio.wrap_future(future)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=_POLL_S)
                if done:
                    return waiting.result()
                if request is not None and await request.is_disconnected():
                    stop.set()
                    future.cancel()
                    waiting.add_done_callback(_retrieve)  # its Interrupted is expected; nobody awaits it
                    raise Interrupted("the client went away; the change was stopped before it was saved")
        except asyncio.CancelledError:
            stop.set()
            future.cancel()
            raise

    def shutdown(self) -> None:
        """Finish the running write; drop queued ones."""
        self._executor.shutdown(wait=True, cancel_futures=True)


class IndexProgress:
    """How far the running index update is, for ``GET /api/index/status`` (the page polls it
    while an upload is indexed). Written by the writer thread, read by requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"busy": False, "document": "", "stage": "", "done": 0, "total": 0}
        self._started = 0.0

    def start(self, document: str) -> None:
        """An update of ``document`` begins (updates run one at a time)."""
        with self._lock:
            self._state = {"busy": True, "document": document, "stage": "starting", "done": 0, "total": 0}
            self._started = time.monotonic()

    def update(self, stage: str, done: int, total: int) -> None:
        """A rag.index.build.Progress: the stage, and chunks embedded of those to embed."""
        with self._lock:
            self._state.update(stage=stage, done=done, total=total)

    def finish(self) -> None:
        """The update ended, saved or not."""
        with self._lock:
            self._state = {"busy": False, "document": self._state["document"], "stage": "", "done": 0, "total": 0}

    def status(self) -> dict[str, Any]:
        """The update running now, as ``GET /api/index/status`` reports it."""
        with self._lock:
            elapsed = time.monotonic() - self._started if self._state["busy"] else 0.0
            return {**self._state, "elapsed_s": round(elapsed, 1)}


class Slots:
    """At most ``limit`` holders at once; one more is refused with ``Busy``, not queued."""

    def __init__(self, limit: int, what: str, setting: str) -> None:
        self._limit = limit
        self._held = 0
        self._lock = threading.Lock()
        self._what = what
        self._setting = setting

    def take(self) -> Callable[[], None]:
        """Take a slot; returns the function that gives it back (safe to call twice)."""
        with self._lock:
            if self._held >= self._limit:
                raise Busy(
                    f"{self._held} {self._what} are already running or queued ({self._setting}); try again shortly"
                )
            self._held += 1
        given_back = threading.Event()

        def give_back() -> None:
            with self._lock:
                if not given_back.is_set():
                    given_back.set()
                    self._held -= 1

        return give_back

    @property
    def in_use(self) -> int:
        """Slots held now."""
        return self._held
