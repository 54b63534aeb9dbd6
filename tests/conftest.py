"""Shared fixtures: the seed page, a fast hashing embedder, and the real default model."""

from __future__ import annotations

from pathlib import Path

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
def real_embedder(model_cache: Path) -> SentenceTransformerEmbedder:
    """The embedded default model, converted once per test session."""
    from rag.service import make_embedder

    return make_embedder(Settings(cache_dir=model_cache))
