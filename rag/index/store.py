"""Where chunks are stored and searched: one protocol, an embedded store and Milvus.

A store holds what retrieval searches: each chunk's vector, its keyword index and the
metadata filters read (document id, publication day). Rows are the positions of the
chunks in an index version (``Snapshot.chunks``); every store answers in rows, so the
answer path never knows which store it reads.

- ``EmbeddedStore`` (the default, nothing to start): FAISS for vectors and BM25 over
  jieba tokens (rag.index.lexical), saved inside the index version folder.
- ``rag.index.milvus.MilvusStore`` (``RAG_STORE=milvus``): a Milvus collection, Milvus Lite
  embedded in a local folder or any Milvus server; the version folder keeps only the
  keys of its rows.

Versions stay the unit of consistency: a writer builds the next version's store with
``updated`` (readers of the current one see no change), saves the version, switches
``CURRENT`` to it and only then calls ``commit``, which lets the store reclaim the rows
the new version dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, get_args

import numpy as np
import numpy.typing as npt

from rag.config import StoreName
from rag.index.embedding import Vectors
from rag.types import Chunk

if TYPE_CHECKING:
    pass

STORES: tuple[str, ...] = get_args(StoreName)
REBUILD_HINT = "rebuild it with `rag index --rebuild` (or `make index`)"
Hit = tuple[int, float]


@dataclass(frozen=True)
class Where:
    """A filter on chunks: only these documents, only publication days in a range (YYYY-MM-DD,
    inclusive; chunks of undated documents never pass a date bound)."""

    doc_ids: frozenset[str] | None = None
    published_from: str = ""
    published_to: str = ""

    def is_empty(self) -> bool:
        return self.doc_ids is None and not self.published_from and not self.published_to

    @classmethod
    def of(cls, doc_ids: Iterable[str] | None, published_from: date | None, published_to: date | None) -> Where | None:
        """The filter a request asks for, or None when it asks for none."""
        where = cls(
            frozenset(doc_ids) if doc_ids is not None else None,
            published_from.isoformat() if published_from else "",
            published_to.isoformat() if published_to else "",
        )
        return None if where.is_empty() else where


@dataclass(frozen=True)
class StoreConfig:
    """Which store a new index is written to, and how Milvus is reached."""

    kind: StoreName = "embedded"
    milvus_uri: str = ""  # empty: Milvus Lite in <index_dir>/milvus.db
    milvus_token: str = ""
    milvus_collection: str = "rag_chunks"

    def uri(self, index_dir: Path) -> str:
        return self.milvus_uri or str((index_dir / "milvus.db").resolve())


class ChunkStore(Protocol):
    """Stores chunk vectors, keywords and metadata; answers searches in rows of the version."""

    @property
    def kind(self) -> str: ...

    def __len__(self) -> int: ...

    def dense_search(self, query: Vectors, k: int, where: Where | None = None) -> list[Hit]:
        """The k rows most similar to a unit query vector, as (row, cosine), best first."""
        ...

    def keyword_search(self, question: str, k: int, where: Where | None = None) -> list[Hit]:
        """The k rows that best match the question's keywords (BM25), best first; only rows that match."""
        ...

    def hybrid_search(
        self, query: Vectors, question: str, k: int, depth: int, rrf_k: int, lexical_weight: float,
        where: Where | None = None,
    ) -> list[Hit]:  # fmt: skip
        """The ``depth`` best rows of each search fused by reciprocal rank; (row, cosine), best first."""
        ...

    def vectors(self, rows: Sequence[int]) -> Vectors:
        """The stored vectors of these rows, in that order."""
        ...

    def updated(self, keep: Sequence[int], chunks: Sequence[Chunk], vectors: Vectors) -> ChunkStore:
        """The next version's store: this one's ``keep`` rows (in that order) then the new
        chunks, which are ``chunks[len(keep):]`` with their ``vectors``. ``chunks`` is the
        next version's whole chunk list. This store and its readers see no change."""
        ...

    def save(self, folder: Path) -> None:
        """Write what the version folder keeps of this store."""
        ...

    def commit(self, previous: Path | None) -> None:
        """Called once the version holding this store is live, with the version it replaced
        (kept on disk, and possibly still read): reclaim rows neither of them holds. Never
        raises: the new version is live whatever happens here."""
        ...


def allowed_mask(
    where: Where | None, doc_ids: npt.NDArray[np.str_], published: npt.NDArray[np.str_]
) -> npt.NDArray[np.bool_] | None:
    """The rows a filter lets through (None: all), from the rows' document ids and days."""
    if where is None or where.is_empty() or len(doc_ids) == 0:
        return None
    mask = np.ones(len(doc_ids), dtype=bool)
    if where.doc_ids is not None:
        mask &= np.isin(doc_ids, sorted(where.doc_ids))
    if where.published_from:
        mask &= (published != "") & (published >= where.published_from)
    if where.published_to:
        mask &= (published != "") & (published <= where.published_to)
    return mask


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int, weights: Sequence[float] | None = None
) -> list[int]:
    """Rows ordered by the sum of weight / (k + rank) over the rankings (rank from 1); ties keep first-seen order."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return sorted(fused, key=lambda row: -fused[row])


def fused_search(
    store: ChunkStore, query: Vectors, question: str, k: int, depth: int, rrf_k: int, lexical_weight: float,
    where: Where | None = None, prefetch: Callable[[Sequence[int]], Future[Vectors]] | None = None,
) -> list[Hit]:  # fmt: skip
    """Hybrid search from a store's own dense and keyword searches; the dense ranking alone
    when no keyword of the question is in the corpus.

    ``prefetch`` (a store whose vectors are on a server, with keywords searched here): the
    keyword search runs first, and the vectors of its k best rows are fetched while the dense
    search runs. Only those rows can enter the top k without a dense rank (any row ranked
    above one by the keywords outscores it), so no second round trip is needed."""
    if prefetch is None:
        dense = store.dense_search(query, max(depth, k), where)
        lexical = [row for row, _ in store.keyword_search(question, depth, where)]
        fetched: dict[int, float] = {}
    else:
        lexical = [row for row, _ in store.keyword_search(question, depth, where)]
        pending = prefetch(lexical[:k]) if lexical else None
        dense = store.dense_search(query, max(depth, k), where)
        vectors = pending.result() if pending is not None else np.zeros((0, len(query)), dtype=np.float32)
        fetched = dict(zip(lexical[:k], (float(s) for s in vectors @ query), strict=True))
    if not lexical:
        return dense[:k]
    rows = reciprocal_rank_fusion([[row for row, _ in dense], lexical], rrf_k, [1.0, lexical_weight])[:k]
    return with_cosines(store, query, rows, known={**fetched, **dict(dense)})


def with_cosines(
    store: ChunkStore, query: Vectors, rows: Sequence[int], known: dict[int, float] | None = None
) -> list[Hit]:
    """Rows with their cosine similarity to the query: from ``known`` (a dense search's
    scores) where it has them, else from the stored vectors (for a store on a server, one
    call for the rows the keyword half alone found, none when there are none)."""
    known = known or {}
    missing = [row for row in rows if row not in known]
    if missing:
        known = {**known, **dict(zip(missing, (float(s) for s in store.vectors(missing) @ query), strict=True))}
    return [(row, known[row]) for row in rows]
