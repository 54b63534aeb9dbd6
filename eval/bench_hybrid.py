"""What hybrid retrieval adds to a query at the 20k-document news corpus, and what it costs in memory.

``python -m eval.bench_hybrid [--documents 20000]``: the CRUD-RAG news articles are
cleaned and chunked as the indexer does, and their keyword index (jieba + BM25) is
built in full. The dense side is the real news index under ``eval/.indexes/`` when it
holds the same chunks (``python -m eval.bench_scale`` builds it), otherwise
clustered random unit vectors of the same count, which cost the same to search (flat or
IVF, as ``rag.index.snapshot.index_type_for`` picks). Each seed question is then ranked densely
and in hybrid mode with the same query vector; the difference is what hybrid adds:
question segmentation, the BM25 scores, the deeper dense search, fusion and the dense
similarities of the fused rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from eval.bench_ann import clustered_unit_vectors
from eval.bench_scale import INDEXES, SHARED
from eval.data import ROOT, load_seed, load_shared
from eval.metrics import percentile
from eval.runner import passage_documents
from rag.config import Settings
from rag.errors import IndexStoreError
from rag.index.embedded import EmbeddedStore, FaissIndex
from rag.index.lexical import ChunkKeywords, build_lexical, chunk_tokens
from rag.index.search import rank_chunks
from rag.index.snapshot import load_snapshot
from rag.ingest.chunking import chunk_document


def _folder_bytes(index: object) -> int:
    import tempfile
    from pathlib import Path

    from rag.index.lexical import LexicalIndex, save_lexical

    assert isinstance(index, LexicalIndex)
    with tempfile.TemporaryDirectory() as tmp:
        save_lexical(index, Path(tmp))
        return sum(p.stat().st_size for p in Path(tmp).iterdir())


def main() -> int:
    """Build the keyword index over the news corpus and time dense against hybrid ranking."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=20_000)
    args = parser.parse_args()
    settings = Settings()
    news = load_shared(SHARED / "crud-news")
    started = time.perf_counter()
    documents = passage_documents(news.name, news.passages[: args.documents])
    chunks = [c for d in documents for c in chunk_document(d, settings.chunk_size, settings.chunk_overlap)]
    chunk_seconds = time.perf_counter() - started
    started = time.perf_counter()
    lexical = build_lexical(chunk_tokens(c) for c in chunks)
    lexical_seconds = time.perf_counter() - started

    dense_source = "random unit vectors"
    try:
        real = load_snapshot(INDEXES / f"crud-news-{settings.chunk_size}-{settings.chunk_overlap}")
        if len(real.chunks) == len(chunks) and isinstance(real.store, EmbeddedStore):
            chunk_index, dense_source = real.store.dense, f"the real news index ({len(real.chunks):,} chunks)"
        else:
            raise IndexStoreError("too small")
    except IndexStoreError:
        chunk_index = FaissIndex(384, clustered_unit_vectors(len(chunks), 384, seed=1))
    store = EmbeddedStore(chunk_index, ChunkKeywords(lexical, chunks))

    questions = [q.question for q in load_seed().questions]
    rng = np.random.default_rng(2)
    queries = [chunk_index.vector(int(r)) for r in rng.integers(0, len(chunk_index), len(questions))]
    dense_ms: list[float] = []
    hybrid_ms: list[float] = []
    for _ in range(2):  # the first pass warms caches; the second is measured
        dense_ms.clear()
        hybrid_ms.clear()
        for question, query in zip(questions, queries, strict=True):
            t0 = time.perf_counter()
            rank_chunks(store, query, "", "dense", settings.top_k, settings.hybrid_depth, settings.rrf_k)
            t1 = time.perf_counter()
            rank_chunks(store, query, question, "hybrid", settings.top_k, settings.hybrid_depth, settings.rrf_k)
            t2 = time.perf_counter()
            dense_ms.append((t1 - t0) * 1000)
            hybrid_ms.append((t2 - t1) * 1000)
    extra = [h - d for h, d in zip(hybrid_ms, dense_ms, strict=True)]
    row = {
        "documents": len(documents),
        "chunks": len(chunks),
        "dense_vectors": dense_source,
        "index_kind": chunk_index.kind,
        "clean_and_chunk_s": round(chunk_seconds, 1),
        "keyword_index_build_s": round(lexical_seconds, 1),
        "keyword_tokens": len(lexical.ids),
        "keyword_index_mb_on_disk": round(_folder_bytes(lexical) / 2**20, 1),
        "dense_p50_ms": round(percentile(dense_ms, 50), 2),
        "hybrid_p50_ms": round(percentile(hybrid_ms, 50), 2),
        "hybrid_p95_ms": round(percentile(hybrid_ms, 95), 2),
        "added_p50_ms": round(percentile(extra, 50), 2),
        "questions": len(questions),
    }
    reports = ROOT / "eval" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench_hybrid.json").write_text(json.dumps(row, indent=1), encoding="utf-8")
    print(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
