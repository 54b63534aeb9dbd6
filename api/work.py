"""Bounded work: index writes on a thread of their own, and a cap on language-model answers.

A request that finds its queue full gets 503 with ``Retry-After`` at once (``Busy``),
instead of holding one of the threads every other request needs (health, questions).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from starlette.requests import Request

from rag.errors import Busy, Interrupted
from rag.fileio import write_atomically

logger = logging.getLogger(__name__)

T = TypeVar("T")
# How often a waiting write looks whether its client is still there.
_POLL_S = 0.25


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class WorkQueue:
    """Jobs run on ``workers`` threads of their own, with at most ``limit`` admitted (running
    or waiting) and at most ``per_client`` of them from one client address."""

    def __init__(self, limit: int, workers: int, what: str, setting: str, stopped: str, per_client: int = 0) -> None:
        self._limit = limit
        self._stopped = stopped
        self._per_client = per_client or limit
        self._admitted = 0
        self._by_client: dict[str, int] = {}
        self._lock = threading.Lock()
        self._what = what
        self._setting = setting
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"rag-{what.split()[0]}")

    def _admit(self, client: str) -> None:
        with self._lock:
            if self._by_client.get(client, 0) >= self._per_client:
                raise Busy(
                    f"this client already has {self._per_client} {self._what} queued; try again when one is done",
                    retry_after_s=10,
                )
            if self._admitted >= self._limit:
                raise Busy(
                    f"{self._admitted} {self._what} are already queued ({self._setting}); try again shortly",
                    retry_after_s=10,
                )
            self._admitted += 1
            self._by_client[client] = self._by_client.get(client, 0) + 1

    @property
    def admitted(self) -> int:
        """Jobs running or waiting."""
        return self._admitted

    def _leave(self, client: str) -> None:
        with self._lock:
            self._admitted -= 1
            left = self._by_client.pop(client, 1) - 1
            if left:
                self._by_client[client] = left

    async def run(self, job: Callable[[threading.Event], T], request: Request | None = None) -> T:
        """Run ``job(stop)`` on a worker thread. If the client goes away first, ``stop`` is
        set (a job not started never runs; a running one stops at its next check)."""
        client = request.client.host if request is not None and request.client else ""
        self._admit(client)
        stop = threading.Event()
        # The request's context (its id, for log lines) goes with the job to the worker thread.
        future: Future[T] = self._executor.submit(contextvars.copy_context().run, job, stop)
        future.add_done_callback(lambda _: self._leave(client))
        waiting = asyncio.wrap_future(future)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=_POLL_S)
                if done:
                    if future.cancelled():  # dropped from the queue: the server is stopping
                        raise Busy(f"the server is stopping; {self._stopped}", retry_after_s=30)
                    return waiting.result()
                if request is not None and await request.is_disconnected():
                    stop.set()
                    future.cancel()
                    waiting.add_done_callback(_retrieve)  # its Interrupted is expected; nobody awaits it
                    raise Interrupted(f"the client went away; {self._stopped}")
        except asyncio.CancelledError:
            stop.set()
            future.cancel()
            raise

    def shutdown(self, wait: bool = True) -> None:
        """Drop queued jobs; finish the running ones (``wait``) or leave them to stop."""
        self._executor.shutdown(wait=wait, cancel_futures=True)


def write_queue(limit: int) -> WorkQueue:
    """Index updates: one at a time."""
    return WorkQueue(
        limit, 1, "uploads or deletes", "RAG_MAX_PENDING_WRITES", "the change was stopped before it was saved"
    )


def parse_queue(limit: int, workers: int, per_client: int) -> WorkQueue:
    """Uploaded files read (each in a process of its own, rag.ingest.sandbox), ``workers`` at once."""
    return WorkQueue(
        limit, workers, "uploads being read", "RAG_MAX_PENDING_PARSES", "its reading was stopped; nothing changed",
        per_client,
    )  # fmt: skip


class IndexProgress:
    """How far the running index update is, for ``GET /api/index/status`` (the page polls it
    while an upload is indexed). Written by the writer thread, read by requests.

    With ``rag serve --workers N`` the update runs in one process and the page's next poll may
    reach another, so the writer also keeps it in ``path`` (a small file beside the index), and
    a process with no update of its own reports that one."""

    # A shared status from a process that is gone is no update; one from another machine (a
    # shared volume), whose processes cannot be looked at, counts until it is this old.
    _STALE_S = 600.0
    _WRITE_EVERY_S = 0.5

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"busy": False, "document": "", "stage": "", "done": 0, "total": 0}
        self._started = 0.0
        self._path = path
        self._written = 0.0

    def start(self, document: str) -> None:
        """An update of ``document`` begins (updates run one at a time)."""
        with self._lock:
            self._state = {"busy": True, "document": document, "stage": "starting", "done": 0, "total": 0}
            self._started = time.monotonic()
            self._share(force=True)

    def update(self, stage: str, done: int, total: int) -> None:
        """A rag.index.build.Progress: the stage, and chunks embedded of those to embed."""
        with self._lock:
            changed = stage != self._state["stage"]
            self._state.update(stage=stage, done=done, total=total)
            self._share(force=changed)

    def finish(self) -> None:
        """The update ended, saved or not."""
        with self._lock:
            self._state = {"busy": False, "document": self._state["document"], "stage": "", "done": 0, "total": 0}
            self._share(force=True)

    def status(self) -> dict[str, Any]:
        """The update running now, as ``GET /api/index/status`` reports it: this process's, else
        the one another process shares."""
        with self._lock:
            elapsed = time.monotonic() - self._started if self._state["busy"] else 0.0
            own = {**self._state, "elapsed_s": round(elapsed, 1)}
        return own if own["busy"] else self._shared() or own

    def _share(self, force: bool) -> None:
        now = time.monotonic()
        if self._path is None or not (force or now - self._written >= self._WRITE_EVERY_S):
            return
        self._written = now
        elapsed = now - self._started if self._state["busy"] else 0.0
        payload = {
            **self._state, "started_at": time.time() - elapsed, "at": time.time(),
            "pid": os.getpid(), "host": socket.gethostname(),
        }  # fmt: skip
        try:  # .tmp- names are what the index's clean-up removes when a writer died mid-write
            write_atomically(self._path, json.dumps(payload).encode(), prefix=".tmp-progress-", sync=False)
        except OSError:
            logger.debug("could not share the index progress at %s", self._path, exc_info=True)

    def _shared(self) -> dict[str, Any] | None:
        """The update another process is running, when there is a recent one."""
        if self._path is None:
            return None
        try:
            shared = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not shared.get("busy") or not _alive(shared, self._STALE_S):
            return None
        elapsed = round(time.time() - float(shared.get("started_at", time.time())), 1)
        return {
            **{k: shared[k] for k in ("busy", "document", "stage", "done", "total") if k in shared},
            "elapsed_s": elapsed,
        }


def _alive(shared: dict[str, Any], stale_s: float) -> bool:
    """Is the process that shared this status still running it?"""
    if shared.get("host") != socket.gethostname():
        return time.time() - float(shared.get("at", 0)) <= stale_s
    try:
        os.kill(int(shared.get("pid", 0)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OSError):
        pass  # it exists (another user's), or cannot be asked
    return True


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


class PageRenders:
    """Page images for display, rendered at most ``concurrent`` at a time and each once: kept
    by key (the document's content hash and the page) with the file's signature (size and
    modification time) in a cache of at most ``max_bytes``; a changed file renders again.

    A large scan's page costs hundreds of MB while it is read and decoded; eight requests for
    it at once decode it once, the others wait for their turn and find it rendered.
    """

    def __init__(self, concurrent: int = 1, max_bytes: int = 64 * 2**20) -> None:
        self._slots = asyncio.Semaphore(concurrent)
        self._cache: OrderedDict[str, tuple[object, bytes]] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def cached(self, key: str, signature: object) -> bytes | None:
        """The rendered page, if it is kept for a file of this signature."""
        with self._lock:
            found = self._cache.get(key)
            if found is None or found[0] != signature:
                return None
            self._cache.move_to_end(key)
            return found[1]

    async def get(self, key: str, signature: object, render: Callable[[], bytes]) -> bytes:
        """The page under ``key``, rendered (on a worker thread) when it is not kept."""
        if (found := self.cached(key, signature)) is not None:
            return found
        async with self._slots:
            if (found := self.cached(key, signature)) is not None:  # rendered while this one waited
                return found
            image = await asyncio.to_thread(contextvars.copy_context().run, render)
        with self._lock:
            if len(image) <= self._max_bytes:
                if (old := self._cache.pop(key, None)) is not None:
                    self._bytes -= len(old[1])
                self._cache[key] = (signature, image)
                self._bytes += len(image)
                while self._bytes > self._max_bytes:
                    _, (_, dropped) = self._cache.popitem(last=False)
                    self._bytes -= len(dropped)
        return image
