"""RAG_EMBEDDING_URL: embeddings from an OpenAI-compatible server, a real process on loopback."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import httpx
import numpy as np
import pytest

from rag.answer.analysis import read_question
from rag.config import Settings
from rag.errors import ModelError
from rag.index.embedding import HashEmbedder, SentenceTransformerEmbedder
from rag.index.remote_embedding import RemoteEmbedder, embeddings_endpoint
from rag.ingest.loaders import parse_bytes
from rag.library import index_documents
from rag.service import make_embedder, open_pipeline
from rag.types import passage_text
from tests.fakes import embedding_server

DOCS = [
    parse_bytes("凤凰县纪委为 386 名农民工追回拖欠工资 500 余万元。".encode(), "wages.txt", "/nowhere/wages.txt"),
    parse_bytes("株洲市空气质量优良天数达到 326 天，创历史新高。".encode(), "air.txt", "/nowhere/air.txt"),
]


def test_endpoint_from_any_base_url() -> None:
    for url in ("http://h:7997", "http://h:7997/", "http://h:7997/v1", "http://h:7997/v1/embeddings"):
        assert embeddings_endpoint(url) == "http://h:7997/v1/embeddings"


def test_an_index_is_built_and_searched_with_a_remote_embedder(tmp_path: Path) -> None:
    with embedding_server("--model", "hash-64", "--fail-first", "2", "--token", "s3cret") as base:
        settings = Settings(
            index_dir=tmp_path / "index", embedding_url=base, embedding_model="hash-64",
            embedding_api_key="s3cret", chunk_size=200, chunk_overlap=20,
        )  # fmt: skip
        embedder = make_embedder(settings)  # its first two requests get 503 and are retried
        assert isinstance(embedder, RemoteEmbedder) and embedder.dimension == 64
        stats, version = index_documents(settings, DOCS, embedder)
        assert version is not None and len(stats.added) == 2
        pipeline = open_pipeline(settings, embedder)
        local = HashEmbedder(64)
        texts = [passage_text(c) for c in pipeline.snapshot.chunks]
        # the server's vectors (sent at three times unit length, out of order) are stored as unit vectors
        np.testing.assert_allclose(pipeline.snapshot.chunk_vectors(), local.embed_documents(texts), atol=1e-6)
        passages = pipeline.retrieve(read_question("凤凰县为多少名农民工追回工资？"), 1).request.passages
        assert passages[0].chunk.doc_id == "wages.txt"
        embedder.close()
        seen = httpx.get(f"{base}/stats").json()
        assert seen["requests"] >= 5 and not any(t.startswith(("query: ", "passage: ")) for t in seen["first_texts"])


def test_e5_models_get_their_prompts_and_failures_are_clear(tmp_path: Path) -> None:
    with embedding_server("--model", "hash-64", "--token", "s3cret") as base:
        remote = RemoteEmbedder(base, "intfloat/multilingual-e5-small", "s3cret", prompts=("query: ", "passage: "))
        remote.embed_query("株洲")
        remote.embed_passages(["凤凰县追回工资。"], [[(0, 3)]])
        remote.embed_terms(["追回"])
        assert httpx.get(f"{base}/stats").json()["first_texts"] == [
            "query: 株洲", "passage: 凤凰县追回工资。", "passage: 凤凰县", "追回",
        ]  # fmt: skip
        remote.close()
        refused = RemoteEmbedder(base, "m", "wrong", retries=3)
        with closing(refused), pytest.raises(ModelError, match=r"HTTP 401.*RAG_EMBEDDING_URL"):
            refused.warm_up()
        assert httpx.get(f"{base}/stats").json()["requests"] == 4  # 401 is not retried
    with closing(RemoteEmbedder(base, "m", retries=0)) as gone, pytest.raises(ModelError, match="ConnectError"):
        gone.warm_up()


def test_the_embedded_model_behind_a_server_gives_the_local_vectors(
    real_embedder: SentenceTransformerEmbedder, model_cache: Path
) -> None:
    questions = ["凤凰县为多少名农民工追回了拖欠工资？", "How many workers did Fenghuang recover wages for?"]
    with embedding_server("--model", "default", "--cache-dir", str(model_cache)) as base:
        remote = make_embedder(Settings(cache_dir=model_cache, embedding_url=base))
        assert isinstance(remote, RemoteEmbedder) and remote.dimension == 384
        agreement = (remote.embed_queries(questions) * real_embedder.embed_queries(questions)).sum(axis=1)
        assert agreement.min() > 0.9999
        passages = (remote.embed_documents(questions) * real_embedder.embed_documents(questions)).sum(axis=1)
        assert passages.min() > 0.9999
        remote.close()
