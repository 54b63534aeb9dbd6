"""Property-based run of schemathesis against the OpenAPI schema of a real server: no 5xx."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from rag.config import Settings
from rag.pipeline import Pipeline


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = _free_port()
    folder = tmp_path_factory.mktemp("schemathesis")
    env = {
        **os.environ,
        "RAG_INDEX_DIR": str(seed_settings.index_dir),
        "RAG_CACHE_DIR": str(seed_settings.cache_dir),
        # Uploads go to a throwaway folder; the shared seed index must not change, so
        # the documents routes are exercised read-only here (see test_api_documents).
        "RAG_DOCUMENTS_DIR": str(folder / "documents"),
    }
    log = folder / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "rag"), "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert server.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline
        time.sleep(0.5)
    try:
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_no_server_errors(server_url: str) -> None:
    """Every operation (but writes to the shared index) with generated inputs: nothing answers 5xx."""
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/api/documents") and operation.method.upper() != "GET":
            continue  # uploads and deletes are tested on a private index copy (test_api_documents)

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(checks=[not_a_server_error])

        check()
        tested.append(f"{operation.method.upper()} {operation.path}")
    assert {"POST /api/ask", "POST /api/ask/stream", "POST /v1/chat/completions", "GET /api/health"} <= set(tested)
