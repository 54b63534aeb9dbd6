"""The embedded store (the default, nothing to start): FAISS for vectors and BM25 over jieba
tokens (rag.index.lexical), saved inside the index version folder."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rag.errors import IndexCorrupt
from rag.index.embedding import Vectors
from rag.index.lexical import ChunkKeywords, build_lexical
from rag.index.store import REBUILD_HINT, Hit, Where, fused_search
from rag.types import Chunk

if TYPE_CHECKING:
    import faiss

# Chosen from eval/bench_ann.py (README, "Benchmarks"): below this many chunks exact
# search costs under ~8 ms a query (15 ms at 100k, 154 ms at 1M); IVF with 4*sqrt(n)
# lists and nprobe 32 answered in 0.3 ms (100k) and 1.4 ms (1M) at recall@10 1.000,
# where HNSW (M=32) fell to 0.82 at 1M.
IVF_FROM = 50_000
_IVF_NPROBE = 32
# A server searches one question vector at a time, where OpenMP's hand-offs cost more than a
# second core gives: on 2 cores an exact search of 16,699 chunks took 0.78 ms on one thread
# and 2.44 ms on two (64,081 chunks: 6.2 against 9.9 ms), and far longer while other work
# held the cores. A loaded index is searched on one thread (process-wide in FAISS).
_SEARCH_THREADS = 1


def index_type_for(count: int) -> str:
    """Exact search while it is fast enough, an IVF index beyond (see eval/bench_ann.py)."""
    return "flat" if count < IVF_FROM else "ivf"


def _ivf_lists(count: int) -> int:
    return max(1, int(4 * math.sqrt(count)))


def _new_faiss_index(dimension: int, vectors: Vectors) -> faiss.Index:
    """An index over ``vectors`` of the type their number calls for."""
    import faiss

    if index_type_for(len(vectors)) == "ivf":
        quantizer = faiss.IndexFlatIP(dimension)
        nlist = _ivf_lists(len(vectors))
        index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        # k-means on a fixed sample: enough points per list, the same index for the same data.
        sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), 40 * nlist), replace=False)
        index.train(vectors[np.sort(sample)])
        index.add(vectors)
        _prepare_ivf(index)
        return index
    flat = faiss.IndexFlatIP(dimension)
    if len(vectors):
        flat.add(vectors)
    return flat


def _prepare_ivf(index: faiss.IndexIVF) -> None:
    """Search settings and the id map that reconstruction needs (neither is in the file)."""
    index.nprobe = _IVF_NPROBE
    index.make_direct_map()


class FaissIndex:
    """Inner-product search over unit vectors (cosine similarity).

    The index type follows the corpus size (``index_type_for``): exact ``IndexFlatIP``
    for small and medium corpora, ``IndexIVFFlat`` for large ones. Both keep the
    vectors, so an update can carry them over.
    """

    def __init__(self, dimension: int, vectors: Vectors | None = None) -> None:
        data = np.zeros((0, dimension), dtype=np.float32) if vectors is None else vectors
        self._index: faiss.Index = _new_faiss_index(dimension, np.ascontiguousarray(data, dtype=np.float32))

    @property
    def kind(self) -> str:
        return "ivf" if hasattr(self._index, "nprobe") else "flat"

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, query: Vectors, k: int, allowed: npt.NDArray[np.int64] | None = None) -> list[tuple[int, float]]:
        """The k best rows for one query vector, as (row, score), best first; only ``allowed`` rows when given."""
        if len(self) == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        import faiss

        params: faiss.SearchParameters | None = None
        if allowed is not None:
            params = faiss.SearchParametersIVF() if self.kind == "ivf" else faiss.SearchParameters()
            if isinstance(params, faiss.SearchParametersIVF):
                params.nprobe = _IVF_NPROBE
            selector = faiss.IDSelectorBatch(allowed)  # must outlive the search
            params.sel = selector
        query_row = query.reshape(1, -1).astype(np.float32)
        scores, rows = self._index.search(query_row, min(k, len(self)), params=params)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def vector(self, row: int) -> Vectors:
        """The stored vector of one row."""
        return np.asarray(self._index.reconstruct(row), dtype=np.float32)

    def vectors(self) -> Vectors:
        """All stored vectors, row-aligned with the chunk store."""
        if len(self) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._index.reconstruct_n(0, len(self)), dtype=np.float32)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> FaissIndex:
        """A saved index, for serving: searched on one thread (see ``_SEARCH_THREADS``)."""
        import faiss

        faiss.omp_set_num_threads(_SEARCH_THREADS)
        try:
            raw = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorrupt(f"{path}: unreadable FAISS index; {REBUILD_HINT}") from exc
        if hasattr(raw, "nprobe"):
            _prepare_ivf(faiss.extract_index_ivf(raw))
        loaded = cls(raw.d)
        loaded._index = raw
        return loaded


class EmbeddedStore:
    """FAISS vectors and a BM25 keyword index in this process, saved in the version folder."""

    kind = "embedded"

    def __init__(self, dense: FaissIndex, keywords: ChunkKeywords) -> None:
        if len(dense) != len(keywords):
            raise IndexCorrupt(f"vectors ({len(dense)}) and keywords ({len(keywords)}) disagree")
        self.dense = dense
        self.keywords = keywords

    @classmethod
    def empty(cls, dimension: int) -> EmbeddedStore:
        return cls(FaissIndex(dimension), ChunkKeywords(build_lexical(()), ()))

    @classmethod
    def load(cls, folder: Path, chunks: Sequence[Chunk]) -> EmbeddedStore:
        dense = FaissIndex.load(folder / "chunks.faiss")
        if len(dense) != len(chunks):
            raise IndexCorrupt(f"{folder}: vectors and chunk store disagree; {REBUILD_HINT}")
        return cls(dense, ChunkKeywords.load(folder, chunks))

    def __len__(self) -> int:
        return len(self.dense)

    def dense_search(self, query: Vectors, k: int, where: Where | None = None) -> list[Hit]:
        mask = self.keywords.allowed(where)
        return self.dense.search(query, k, None if mask is None else np.flatnonzero(mask).astype(np.int64))

    def keyword_search(self, question: str, k: int, where: Where | None = None) -> list[Hit]:
        return self.keywords.search(question, k, where)

    def hybrid_search(
        self, query: Vectors, question: str, k: int, depth: int, rrf_k: int, lexical_weight: float,
        where: Where | None = None,
    ) -> list[Hit]:  # fmt: skip
        return fused_search(self, query, question, k, depth, rrf_k, lexical_weight, where)

    def vectors(self, rows: Sequence[int]) -> Vectors:
        if len(rows) == 0:
            return np.zeros((0, self.dense.dimension), dtype=np.float32)
        return np.stack([self.dense.vector(int(row)) for row in rows])

    def updated(self, keep: Sequence[int], chunks: Sequence[Chunk], vectors: Vectors) -> EmbeddedStore:
        new = chunks[len(keep) :]
        if len(new) != len(vectors):
            raise ValueError(f"{len(new)} new chunks but {len(vectors)} vectors")
        kept = self.dense.vectors()[np.asarray(keep, dtype=np.int64)] if len(keep) else None
        parts = [v for v in (kept, np.asarray(vectors, dtype=np.float32)) if v is not None and len(v)]
        stacked = np.concatenate(parts) if parts else np.zeros((0, self.dense.dimension), dtype=np.float32)
        return EmbeddedStore(FaissIndex(self.dense.dimension, stacked), self.keywords.updated(keep, chunks))

    def save(self, folder: Path) -> None:
        self.dense.save(folder / "chunks.faiss")
        self.keywords.save(folder)

    def commit(self, previous: Path | None) -> None:
        """Nothing to reclaim: superseded versions are pruned with their folders."""
