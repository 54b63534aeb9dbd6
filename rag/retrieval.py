"""Which chunks answer a question: dense, keyword (BM25) or both fused, optionally reranked.

Every mode returns chunk rows best first with their dense cosine similarity to the
question, whatever decided the order: the extractive answer's abstention compares that
similarity with the corpus background, so it must mean the same thing in every mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, get_args

import numpy as np

from rag.embedding import Vectors
from rag.errors import ConfigError
from rag.index import Snapshot

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


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int, weights: Sequence[float] | None = None
) -> list[int]:
    """Rows ordered by the sum of weight / (k + rank) over the rankings (rank from 1); ties keep first-seen order."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return sorted(fused, key=lambda row: -fused[row])


def dense_scores(snapshot: Snapshot, query: Vectors, rows: Sequence[int]) -> list[float]:
    """Cosine similarity of the query to each row's chunk vector."""
    if not rows:
        return []
    vectors = np.stack([snapshot.chunk_index.vector(row) for row in rows])
    return [float(s) for s in vectors @ query]


def rank_chunks(
    snapshot: Snapshot,
    query: Vectors,
    tokens: Sequence[str],
    mode: RetrieverName,
    top_k: int,
    depth: int,
    rrf_k: int,
    lexical_weight: float = 1.0,
) -> list[tuple[int, float]]:
    """The top_k chunk rows for a question, as (row, dense similarity), best first.

    ``hybrid`` fuses the ``depth`` best rows of each retriever by reciprocal rank; when
    no question token is in the corpus vocabulary it is the dense ranking.
    """
    if mode == "dense":
        return snapshot.chunk_index.search(query, top_k)
    lexical = [row for row, _ in snapshot.lexical.search(tokens, depth if mode == "hybrid" else top_k)]
    if mode == "lexical":
        rows = lexical[:top_k]
    else:
        dense = snapshot.chunk_index.search(query, max(depth, top_k))
        if not lexical:
            return dense[:top_k]
        rankings = [[row for row, _ in dense], lexical]
        rows = reciprocal_rank_fusion(rankings, rrf_k, [1.0, lexical_weight])[:top_k]
    return list(zip(rows, dense_scores(snapshot, query, rows), strict=True))


def rerank(
    reranker: Reranker, question: str, texts: Sequence[str], hits: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    """The hits reordered by the reranker's scores (stable for equal scores)."""
    if len(hits) < 2:
        return hits
    scores = reranker.scores(question, texts)
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [hits[i] for i in order]
