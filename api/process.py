"""``rag serve`` as a child process on a free loopback port, for the benchmarks (eval/) and the
end-to-end tests: started, waited for until it answers, stopped."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(
    env: dict[str, str],
    log: Path,
    ready_s: float = 180,
    open_files: int = 0,
    log_level: str = "warning",
    args: tuple[str, ...] = (),
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``rag serve`` as a real process on a free loopback port; yields its base URL and process
    once ready. ``open_files``: its hard limit on open files (as ``ulimit -n``), if set."""
    port = _free_port()

    def limit() -> None:
        if open_files:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "rag"), "serve", "--port", str(port), "--log-level", log_level, *args],
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=limit if open_files else None,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"the server stopped: {log.read_text(errors='replace')[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready")
            time.sleep(0.5)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def running_server(env: dict[str, str], log: Path, ready_s: float = 180, log_level: str = "warning") -> Iterator[str]:
    """``rag serve`` as a real process on a free loopback port; yields its base URL once ready."""
    with server_process(env, log, ready_s, log_level=log_level) as (base, _):
        yield base
