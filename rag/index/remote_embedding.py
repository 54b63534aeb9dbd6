"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` server (``RAG_EMBEDDING_URL``).

A large corpus can be embedded on another machine (Infinity, Text Embeddings Inference or
vLLM on a GPU) while this service chunks, indexes and answers. The server returns one
pooled vector per text, so a passage's sentence vectors are embedded as texts of their
own (the local embedder pools them from the passage's tokens in one pass instead).

The server is sent plain text: the model's prompts (``query: ``/``passage: `` for the e5
family) are added here, from RAG_EMBEDDING_QUERY_PROMPT and RAG_EMBEDDING_PASSAGE_PROMPT.
Vectors are scaled to unit length, as the index's inner product expects.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import numpy as np

from rag.errors import ModelError
from rag.index.embedding import QueryBatcher, Vectors
from rag.remote import RETRY_STATUS

_log = logging.getLogger(__name__)


def embeddings_endpoint(url: str) -> str:
    """``…/v1/embeddings`` from a server's base URL (``http://host:7997``, ``…/v1``) or the endpoint itself."""
    base = url.rstrip("/")
    if base.endswith("/embeddings"):
        return base
    return f"{base}/embeddings" if base.endswith("/v1") else f"{base}/v1/embeddings"


def e5_prompts(model: str) -> tuple[str, str]:
    """The query and passage prompts the e5 family was trained with; none for other models."""
    return ("query: ", "passage: ") if "e5" in model.lower() else ("", "")


class RemoteEmbedder:
    """The Embedder protocol over HTTP, in batches, with retries on overload and network errors."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str = "",
        batch_size: int = 64,
        timeout_s: float = 60.0,
        retries: int = 3,
        prompts: tuple[str, str] = ("", ""),
        client: httpx.Client | None = None,
    ) -> None:
        self._endpoint = embeddings_endpoint(url)
        self._model = model
        self._batch_size = batch_size
        self._retries = retries
        self._query_prompt, self._passage_prompt = prompts
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client(timeout=timeout_s, headers=headers)
        self._dimension = 0
        self._queries = QueryBatcher(lambda texts: self._embed([self._query_prompt + t for t in texts]))

    @property
    def name(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        if not self._dimension:
            self.warm_up()
        return self._dimension

    def close(self) -> None:
        """Close the connections to the server."""
        self._client.close()

    def warm_up(self) -> None:
        """Ask the server once: it answers, and says how long its vectors are."""
        if not self._dimension:
            self._dimension = int(self._embed(["dimension probe"]).shape[1])

    def _post(self, texts: list[str]) -> list[list[float]]:
        payload = {"model": self._model, "input": texts, "encoding_format": "float"}
        for attempt in range(self._retries + 1):
            problem = ""
            try:
                response = self._client.post(self._endpoint, json=payload)
            except httpx.HTTPError as exc:
                problem = exc.__class__.__name__
                _log.warning("embedding server %s: %r", self._endpoint, exc)
            else:
                if response.status_code == 200:
                    return self._vectors(response, len(texts))
                problem = f"HTTP {response.status_code}"
                _log.warning(
                    "embedding server %s: HTTP %s: %s", self._endpoint, response.status_code, response.text[:500]
                )
                if response.status_code not in RETRY_STATUS:
                    break
            if attempt < self._retries:
                time.sleep(min(8.0, 0.5 * 2**attempt))
        raise ModelError(
            f"the embedding server at {self._endpoint} failed: {problem} (RAG_EMBEDDING_URL; the log has its answer)"
        )

    def _vectors(self, response: httpx.Response, count: int) -> list[list[float]]:
        try:
            body: Any = response.json()
            rows = sorted(body["data"], key=lambda row: int(row["index"]))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (ValueError, KeyError, TypeError) as exc:
            _log.warning("embedding server %s: unreadable answer %r: %s", self._endpoint, exc, response.text[:500])
            raise ModelError(f"the embedding server at {self._endpoint} sent an unreadable answer") from exc
        if len(vectors) != count or len({len(v) for v in vectors}) > 1:
            raise ModelError(f"the embedding server at {self._endpoint} sent {len(vectors)} vectors for {count} texts")
        return vectors

    def _embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            rows.extend(self._post(texts[start : start + self._batch_size]))
        vectors = np.asarray(rows, dtype=np.float32)
        if self._dimension and vectors.shape[1] != self._dimension:
            raise ModelError(
                f"the embedding server's vectors changed length ({vectors.shape[1]}, was {self._dimension})"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.where(norms == 0, 1, norms), dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        return self._queries.embed(text)

    def embed_queries(self, texts: list[str]) -> Vectors:
        return self._embed([self._query_prompt + t for t in texts])

    def embed_documents(self, texts: list[str]) -> Vectors:
        return self._embed([self._passage_prompt + t for t in texts])

    def embed_terms(self, texts: list[str]) -> Vectors:
        return self._embed(list(texts))

    def embed_passages(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> tuple[Vectors, Vectors]:
        pieces = [text[a:b] for text, text_spans in zip(texts, spans, strict=True) for a, b in text_spans]
        both = self.embed_documents([*texts, *pieces])
        return both[: len(texts)], both[len(texts) :]
