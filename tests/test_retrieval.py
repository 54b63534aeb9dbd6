"""Keyword (BM25) index, fusion and retrieval modes."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.answer.analysis import read_question
from rag.answer.retrieval import Pipeline, RetrievalOptions
from rag.config import Settings
from rag.errors import ConfigError, IndexCorrupt
from rag.index.build import update_snapshot
from rag.index.embedding import HashEmbedder
from rag.index.lexical import build_lexical, extend_lexical, load_lexical, query_tokens, save_lexical, tokenize
from rag.index.search import RETRIEVERS, rank_chunks
from rag.index.snapshot import load_snapshot, save_snapshot
from rag.index.store import reciprocal_rank_fusion
from rag.ingest.loaders import parse_bytes
from rag.library import index_documents
from rag.types import Document


def _doc(doc_id: str, text: str) -> Document:
    return parse_bytes(text.encode(), doc_id, f"/nowhere/{doc_id}")


DOCS = [
    _doc("wages.txt", "凤凰县纪委为 386 名农民工追回拖欠工资 500 余万元。"),
    _doc("air.txt", "株洲市空气质量优良天数达到 326 天，创历史新高。"),
    _doc("jobs.txt", "郴州市发布 38 个紧缺工种，培训补助提高到每人 1800 元。"),
    _doc("museum.txt", "The Zixing museum opened in September 2010 and hosts student visits."),
]


def test_chinese_is_segmented_into_words_subwords_and_bigrams() -> None:
    tokens = tokenize("凤凰县为386名农民工追回拖欠工资")
    assert {"凤凰县", "凤凰", "农民工", "农民", "追回", "工资", "386"} <= set(tokens)
    assert {"#农民", "#民工", "#工追"} <= set(tokens)
    # a run of Chinese characters is never one token
    assert "凤凰县为" not in tokens


def test_numbers_stay_whole_and_latin_is_lowercased() -> None:
    tokens = tokenize("Fenghuang recovered ５００ yuan for 386 workers; 311.78 万元")
    assert {"fenghuang", "500", "386", "311.78"} <= set(tokens)
    assert "8" not in tokens and "38" not in tokens


def test_query_drops_question_words() -> None:
    tokens = query_tokens("凤凰县为多少名农民工追回了工资？How many workers?")
    assert "多少" not in tokens and "how" not in tokens and "many" not in tokens
    assert {"凤凰县", "农民工", "工资", "workers"} <= set(tokens)


def test_bm25_ranks_the_matching_chunk_first_and_ignores_unknown_tokens() -> None:
    index = build_lexical(tokenize(d.text) for d in DOCS)
    assert index.search(query_tokens("农民工的工资追回了多少？"), 3)[0][0] == 0
    assert index.search(query_tokens("紧缺工种"), 3)[0][0] == 2
    assert index.search(query_tokens("museum"), 3)[0][0] == 3
    assert index.search(["无关词语", "nothing"], 3) == []
    scores = [s for _, s in index.search(query_tokens("株洲 工资 工种"), 4)]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)


def test_extending_keeps_rows_in_order_and_forgets_dropped_ones() -> None:
    index = build_lexical(tokenize(d.text) for d in DOCS[:3])
    extended = extend_lexical(index, [2, 1], [tokenize(DOCS[3].text)])
    assert len(extended) == 3
    assert extended.search(query_tokens("紧缺工种"), 3)[0][0] == 0
    assert extended.search(query_tokens("空气质量"), 3)[0][0] == 1
    assert extended.search(query_tokens("museum"), 3)[0][0] == 2
    assert extended.search(query_tokens("农民工"), 3) == []


def test_keyword_index_round_trips_through_files(tmp_path: Path) -> None:
    index = build_lexical(tokenize(d.text) for d in DOCS)
    save_lexical(index, tmp_path)
    loaded = load_lexical(tmp_path)
    assert loaded is not None
    assert loaded.vocab == index.vocab
    for query in ("农民工工资", "museum 2010", "紧缺工种"):
        assert loaded.search(query_tokens(query), 4) == index.search(query_tokens(query), 4)
    np.save(tmp_path / "bm25.offsets.npy", np.array([0, 5, 3], dtype=np.int64))
    with pytest.raises(IndexCorrupt):
        load_lexical(tmp_path)


def test_reciprocal_rank_fusion() -> None:
    # 7 is second in both lists and beats rows that are first in only one
    assert reciprocal_rank_fusion([[1, 7, 3], [2, 7, 4]], k=60)[0] == 7
    assert reciprocal_rank_fusion([[1, 2], [2, 1]], k=60) == [1, 2]  # a tie keeps first-seen order
    assert reciprocal_rank_fusion([[1, 2], [2, 1]], k=60, weights=[1.0, 2.0]) == [2, 1]
    assert reciprocal_rank_fusion([[], [5]], k=60) == [5]


def test_every_mode_returns_dense_similarities(hash_embedder: HashEmbedder) -> None:
    snapshot, _ = update_snapshot(None, DOCS, hash_embedder, chunk_size=200, chunk_overlap=20)
    question = "凤凰县农民工工资"
    query = hash_embedder.embed_query(question)
    vectors = snapshot.chunk_vectors()
    for mode in RETRIEVERS:
        hits = rank_chunks(snapshot.store, query, question, mode, 3, depth=10, rrf_k=60)  # type: ignore[arg-type]
        assert hits, mode
        for row, score in hits:
            assert score == pytest.approx(float(vectors[row] @ query), abs=1e-5)
    lexical = rank_chunks(snapshot.store, query, question, "lexical", 3, depth=10, rrf_k=60)
    assert snapshot.chunks[lexical[0][0]].doc_id == "wages.txt"
    # no question word in the corpus: hybrid is exactly the dense ranking
    english = hash_embedder.embed_query("unrelated words")
    dense = rank_chunks(snapshot.store, english, "", "dense", 3, depth=10, rrf_k=60)
    assert rank_chunks(snapshot.store, english, "unrelated words", "hybrid", 3, 10, 60) == dense


def test_index_versions_carry_the_keyword_index_and_old_ones_still_load(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    snapshot, _ = update_snapshot(None, DOCS, hash_embedder, chunk_size=200, chunk_overlap=20)
    folder = save_snapshot(snapshot, tmp_path)
    assert (folder / "bm25.token_ids.npy").exists()
    assert load_snapshot(tmp_path).store.keyword_search("紧缺工种", 1)[0][0] == 2
    # a version written before the keyword index existed: rebuilt in memory on load
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for name in [n for n in manifest["files"] if n.startswith("bm25.")]:
        (folder / name).unlink()
        del manifest["files"][name]
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    old = load_snapshot(tmp_path)
    assert old.store.keyword_search("紧缺工种", 1)[0][0] == 2
    # the next index run, even with nothing new, persists it
    settings = Settings(index_dir=tmp_path, embedding_model=hash_embedder.name, chunk_size=200, chunk_overlap=20)
    _, version = index_documents(settings, DOCS, hash_embedder)
    assert version is not None and (version / "bm25.token_ids.npy").exists()
    assert index_documents(settings, DOCS, hash_embedder)[1] is None


def test_incremental_update_segments_only_new_chunks(hash_embedder: HashEmbedder) -> None:
    first, _ = update_snapshot(None, DOCS[:2], hash_embedder, chunk_size=200, chunk_overlap=20)
    second, _ = update_snapshot(first, DOCS[2:], hash_embedder, chunk_size=200, chunk_overlap=20, drop=["air.txt"])
    docs = [c.doc_id for c in second.chunks]
    assert "air.txt" not in docs
    for question, doc_id in (("农民工工资", "wages.txt"), ("紧缺工种", "jobs.txt"), ("museum", "museum.txt")):
        row = second.store.keyword_search(question, 1)[0][0]
        assert second.chunks[row].doc_id == doc_id
    assert second.store.keyword_search("空气质量", 3) == []


class _Reversed:
    """A reranker that prefers what retrieval ranked last."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        self.calls.append((question, len(passages)))
        return [float(n) for n in range(len(passages))]


def test_pipeline_modes_per_request_and_reranking(hash_embedder: HashEmbedder) -> None:
    snapshot, _ = update_snapshot(None, DOCS, hash_embedder, chunk_size=200, chunk_overlap=20)
    pipeline = Pipeline(hash_embedder, snapshot, RetrievalOptions("dense"))
    for mode in RETRIEVERS:
        assert pipeline.retrieve(read_question("紧缺工种"), 2, mode).request.passages
    with pytest.raises(ConfigError, match="hybrid"):
        pipeline.retrieve(read_question("紧缺工种"), 2, "sparse")
    plain = [
        p.chunk.chunk_id for p in pipeline.retrieve(read_question("紧缺工种 农民工"), 4, "hybrid").request.passages
    ]
    reranker = _Reversed()
    reranked = Pipeline(hash_embedder, snapshot, RetrievalOptions("dense", rerank_depth=4, reranker=reranker))
    got = [p.chunk.chunk_id for p in reranked.retrieve(read_question("紧缺工种 农民工"), 4, "hybrid").request.passages]
    assert reranker.calls == [("紧缺工种 农民工", len(plain))]
    assert got == plain[::-1]


def test_seed_question_in_each_mode_cites_fenghuang(seed_pipeline: Pipeline) -> None:
    from rag.answer.generators import Generators
    from rag.answer.stream import Answerer, Query
    from rag.config import Settings

    settings = Settings(generator="extractive")
    answerer = Answerer(seed_pipeline, Generators(settings), settings)
    for mode in RETRIEVERS:
        answer = answerer.ask(Query("凤凰县为多少名农民工追回了拖欠工资？", retriever=mode))
        assert re.search(r"(?<!\d)386(?!\d)", answer.text), mode
        assert answer.citations[0].title == "凤凰纪委为农民工解“薪”愁", mode
    english = answerer.ask(Query("How many workers did Fenghuang recover wages for?", retriever="hybrid"))
    assert re.search(r"(?<!\d)386(?!\d)", english.text)
