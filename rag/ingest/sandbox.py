"""Reading an untrusted file as bounded work: in a process of its own, with limits.

A file's parser (pypdf, python-docx, trafilatura, OCR) can be made to work without end by a
small hostile file (a 10 KB PDF of 350,000 text operators takes 10 s a page). So an upload is
read in a child process, forked from a server that has loaded the parsers and nothing else:

    CPU time  the kernel stops the child past ``cpu_s`` (RLIMIT_CPU);
    memory    the parent kills it when its resident memory passes ``memory_bytes``;
    wall time the parent kills it past ``wall_s`` (a parse blocked on nothing the CPU limit sees);
    cancel    ``stop`` (a client gone, a server stopping) kills it at once.

Each ends in a ``ParseLimitExceeded`` naming the limit and its setting; the library errors
the child raises come back as themselves. ``stop_all`` kills every child (SIGTERM).
``run_isolated`` runs any such work the same way (a large scan's page rendered for display).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from rag.errors import Busy, Interrupted, LoaderError, ParseLimitExceeded, RagError
from rag.ingest.loaders import NeedsOcr, ReadOptions, parse_bytes
from rag.ingest.scans import PageProgress
from rag.types import Document

_POLL_S = 0.05
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ParseLimits:
    """What one file's reading may use (RAG_PARSE_CPU_S, RAG_PARSE_MEMORY_MB, RAG_PARSE_WALL_S)."""

    cpu_s: int = 120
    memory_bytes: int = 3 * 2**30
    wall_s: float = 600.0


_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["rag.ingest.loaders", "rag.ingest.scans", "rag.ingest.sandbox"])
_children: set[Any] = set()
_halted: set[Any] = set()  # children stop_all killed
_children_lock = threading.Lock()


def _in_child(conn: Connection, function: Callable[..., Any], args: tuple[Any, ...], cpu_s: int, name: str) -> None:
    """The child: limit its CPU time, run ``function(*args, progress)``, send progress lines and
    the outcome (a library error is sent as itself; NeedsOcr too)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 2))  # SIGXCPU at the soft limit, SIGKILL at hard
    try:
        conn.send(("done", function(*args, progress=lambda d, t: conn.send(("progress", d, t)))))
    except (RagError, NeedsOcr) as exc:
        conn.send(("raised", exc))
    except MemoryError:
        conn.send(("memory", None))
    except Exception as exc:  # a parser's own bug: the upload fails, the server does not
        conn.send(("raised", LoaderError(f"{name}: could not be read ({type(exc).__name__}: {exc})")))
    finally:
        conn.close()


def _rss(pid: int) -> int:
    """A process's resident memory in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def read_isolated(
    data: bytes,
    doc_id: str,
    source: str,
    published: str,
    options: ReadOptions,
    limits: ParseLimits,
    progress: PageProgress | None = None,
    stop: threading.Event | None = None,
) -> Document:
    """``parse_bytes`` in a child process within ``limits``; see the module's description.
    ``NeedsOcr`` (with the page count) when the file is a scan and ``options.scans`` is off."""
    name = source.rsplit("/", 1)[-1]
    document: Document = run_isolated(
        parse_bytes, (data, doc_id, source, published, options), limits, name, progress, stop
    )
    return document


def run_isolated(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    limits: ParseLimits,
    name: str,
    progress: PageProgress | None = None,
    stop: threading.Event | None = None,
) -> Any:
    """``function(*args, progress=...)`` (a module-level function) in a child process within
    ``limits``: its result, or the library error it raised; ``name`` is the file's, for messages."""
    parent, child = _context.Pipe(duplex=False)
    process = _context.Process(
        target=_in_child,
        args=(child, function, args, limits.cpu_s, name),
        name=f"rag-parse {name}"[:60],
        daemon=True,
    )
    with _children_lock:
        process.start()
        _children.add(process)
    child.close()
    started = time.monotonic()
    outcome: tuple[Any, ...] | None = None
    why = ""
    try:
        while True:
            if parent.poll(_POLL_S):
                try:
                    message = parent.recv()
                except EOFError:
                    break  # the child died without an outcome (killed): below
                if message[0] == "progress":
                    if progress is not None:
                        progress(message[1], message[2])
                    continue
                outcome = message
                break
            if stop is not None and stop.is_set():
                why = "stopped"
                break
            if process.pid is not None and _rss(process.pid) > limits.memory_bytes:
                why = "memory"
                break
            if time.monotonic() - started > limits.wall_s:
                why = "wall"
                break
            if not process.is_alive() and not parent.poll(0):
                break
    finally:
        if outcome is None and process.is_alive():
            process.kill()
        process.join(5)
        with _children_lock:
            _children.discard(process)
            if process in _halted:
                _halted.discard(process)
                why = "halted"
        parent.close()
    if why == "halted":
        raise Busy(f"{name}: the server is stopping; send the file again when it is back", retry_after_s=30)
    if outcome is not None:
        kind, result = outcome
        if kind == "done":
            return result
        if kind == "raised":
            raise result
        why = "memory"
    if why == "stopped":
        raise Interrupted(f"{name}: reading it was stopped (the client went away)")
    if why == "memory":
        raise ParseLimitExceeded(
            f"{name}: reading it needed more than {limits.memory_bytes // 2**20} MB of memory (RAG_PARSE_MEMORY_MB)"
        )
    if why == "wall":
        raise ParseLimitExceeded(f"{name}: reading it took longer than {limits.wall_s:.0f} s (RAG_PARSE_WALL_S)")
    if process.exitcode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise ParseLimitExceeded(f"{name}: reading it took more than {limits.cpu_s} s of CPU time (RAG_PARSE_CPU_S)")
    raise LoaderError(f"{name}: the reader stopped unexpectedly (exit code {process.exitcode})")


def stop_all() -> int:
    """Kill every reading child (the server is stopping); how many there were."""
    with _children_lock:
        running = [p for p in _children if p.is_alive()]
        _halted.update(running)
        for process in running:
            process.kill()
    return len(running)
