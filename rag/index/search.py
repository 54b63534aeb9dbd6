"""Which chunks answer a question: dense, keyword (BM25) or both fused, optionally reranked.

Every mode returns chunk rows best first with their dense cosine similarity to the
question, whatever decided the order: the extractive answer's abstention compares that
similarity with the corpus background, so it must mean the same thing in every mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, get_args

from rag.errors import ConfigError
from rag.index.embedding import Vectors
from rag.index.store import ChunkStore, Where, with_cosines

RetrieverName = Literal["dense", "lexical", "hybrid"]
RETRIEVERS: tuple[str, ...] = get_args(RetrieverName)


class Reranker(Protocol):
    """Scores (question, passage) pairs; higher is more relevant."""

    def scores(self, question: str, passages: Sequence[str]) -> list[float]: ...


def check_retriever(name: str) -> RetrieverName:
    """``name`` if it is a retrieval mode, else a ConfigError that lists the modes."""
    if name not in RETRIEVERS:
        raise ConfigError(f"unknown retriever {name!r}; choose one of: {', '.join(RETRIEVERS)}")
    return name  # type: ignore[return-value]


def rank_chunks(
    store: ChunkStore,
    query: Vectors,
    question: str,
    mode: RetrieverName,
    top_k: int,
    depth: int,
    rrf_k: int,
    lexical_weight: float = 1.0,
    where: Where | None = None,
) -> list[tuple[int, float]]:
    """The top_k chunk rows for a question, as (row, dense similarity), best first.

    ``hybrid`` fuses the ``depth`` best rows of each retriever by reciprocal rank; when
    no question keyword is in the corpus it is the dense ranking.
    """
    if mode == "dense":
        return store.dense_search(query, top_k, where)
    if mode == "lexical":
        rows = [row for row, _ in store.keyword_search(question, top_k, where)]
        return with_cosines(store, query, rows)
    return store.hybrid_search(query, question, top_k, depth, rrf_k, lexical_weight, where)


def rerank(
    reranker: Reranker, question: str, texts: Sequence[str], hits: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    """The hits reordered by the reranker's scores (stable for equal scores)."""
    if len(hits) < 2:
        return hits
    scores = reranker.scores(question, texts)
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [hits[i] for i in order]
