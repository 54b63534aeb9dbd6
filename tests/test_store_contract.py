"""One contract for every chunk store: the embedded FAISS + BM25 store and Milvus (Milvus
Lite, the real Milvus code path through pymilvus and gRPC, in a temporary folder)."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.answer.analysis import read_question
from rag.config import Settings
from rag.errors import IndexMismatch
from rag.index.build import update_snapshot
from rag.index.embedding import HashEmbedder
from rag.index.search import RETRIEVERS, rank_chunks
from rag.index.snapshot import Snapshot, load_snapshot, save_snapshot
from rag.index.store import STORES, StoreConfig, Where
from rag.ingest.loaders import parse_bytes
from rag.library import index_documents
from rag.service import open_pipeline
from rag.types import Document


def _doc(doc_id: str, text: str, published: str = "") -> Document:
    return replace(parse_bytes(text.encode(), doc_id, f"/nowhere/{doc_id}"), published=published)


DOCS = [
    _doc('wages "2024".txt', "凤凰县纪委为 386 名农民工追回拖欠工资 500 余万元。", "2024-03-01"),
    _doc("air.txt", "株洲市空气质量优良天数达到 326 天，创历史新高。", "2024-06-15"),
    _doc("jobs.txt", "郴州市发布 38 个紧缺工种，培训补助提高到每人 1800 元。", "2025-01-10"),
    _doc("museum.txt", "The Zixing museum opened in September 2010 and hosts student visits."),
]


WAGES = 'wages "2024".txt'  # quotes: filters must escape document ids


def _rows_in_milvus(stores: StoreConfig, index_dir: Path) -> int:
    from rag.index.milvus import _client

    client = _client(stores.uri(index_dir), "")
    return int(client.query(stores.milvus_collection, filter="", output_fields=["count(*)"])[0]["count(*)"])


@pytest.fixture(params=[*STORES, "milvus-server"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> StoreConfig:
    """Each store; Milvus is Milvus Lite in a temporary folder (or the server RAG_TEST_MILVUS_URI
    names, http://host:19530), and a real Milvus standalone server started for the session
    (``milvus_server``), each test with a collection of its own."""
    if request.param == "milvus-server":
        uri = request.getfixturevalue("milvus_server")
        return StoreConfig("milvus", milvus_uri=uri, milvus_collection=f"contract_{uuid.uuid4().hex}")
    server = os.environ.get("RAG_TEST_MILVUS_URI", "")
    collection = f"contract_{uuid.uuid4().hex}" if server else "contract"
    return StoreConfig(request.param, milvus_uri=server or str(tmp_path / "milvus.db"), milvus_collection=collection)


def _build(
    embedder: HashEmbedder,
    stores: StoreConfig,
    index_dir: Path,
    docs: list[Document] = DOCS,
    old: Snapshot | None = None,
    drop: tuple[str, ...] = (),
) -> Snapshot:
    snapshot, _ = update_snapshot(old, docs, embedder, 200, 20, drop=drop, stores=stores, index_dir=index_dir)
    return snapshot


def _doc_ids(snapshot: Snapshot, hits: list[tuple[int, float]]) -> list[str]:
    return [snapshot.chunks[row].doc_id for row, _ in hits]


def test_dense_search_finds_each_document_with_its_cosine(
    stores: StoreConfig, tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    snapshot = _build(hash_embedder, stores, tmp_path)
    store = snapshot.store
    assert store.kind == stores.kind and len(store) == len(snapshot.chunks) == 4
    vectors = snapshot.chunk_vectors()
    assert vectors.shape == (4, hash_embedder.dimension)
    for doc in DOCS:
        query = hash_embedder.embed_query(doc.text)
        hits = store.dense_search(query, 3)
        assert len(hits) == 3 and _doc_ids(snapshot, hits)[0] == doc.doc_id
        for row, score in hits:
            assert score == pytest.approx(float(vectors[row] @ query), abs=1e-4)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_keyword_search_matches_words_and_only_matching_chunks(
    stores: StoreConfig, tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    snapshot = _build(hash_embedder, stores, tmp_path)
    for question, doc_id in (
        ("农民工的工资追回了多少？", WAGES),
        ("紧缺工种", "jobs.txt"),
        ("museum", "museum.txt"),
    ):
        hits = snapshot.store.keyword_search(question, 3)
        assert _doc_ids(snapshot, hits) == [doc_id], question
    assert snapshot.store.keyword_search("完全无关的词语", 3) == []
    assert snapshot.store.keyword_search("多少？", 3) == []  # question words alone match nothing


def test_every_mode_ranks_with_dense_similarities_and_hybrid_falls_back_to_dense(
    stores: StoreConfig, tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    snapshot = _build(hash_embedder, stores, tmp_path)
    question = "凤凰县农民工工资"
    query = hash_embedder.embed_query(question)
    vectors = snapshot.chunk_vectors()
    for mode in RETRIEVERS:
        hits = rank_chunks(snapshot.store, query, question, mode, 3, depth=10, rrf_k=60)  # type: ignore[arg-type]
        assert _doc_ids(snapshot, hits)[0] == WAGES, mode
        for row, score in hits:
            assert score == pytest.approx(float(vectors[row] @ query), abs=1e-4)
    english = hash_embedder.embed_query("unrelated words")
    dense = rank_chunks(snapshot.store, english, "", "dense", 3, depth=10, rrf_k=60)
    hybrid = rank_chunks(snapshot.store, english, "unrelated words", "hybrid", 3, 10, 60)
    # The same ranking; rows of equal similarity may come in either order (a Milvus server's
    # searches of different depths break ties differently).
    assert [score for _, score in hybrid] == pytest.approx([score for _, score in dense])
    assert {row: score for row, score in hybrid if score > 1e-6} == {row: score for row, score in dense if score > 1e-6}
    # the weighted fusion (Milvus' ranker has no weights) ranks the same way here
    weighted = rank_chunks(snapshot.store, query, question, "hybrid", 3, 10, 60, lexical_weight=2.0)
    assert _doc_ids(snapshot, weighted)[0] == WAGES


def test_filters_by_document_and_publication_day(
    stores: StoreConfig, tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    snapshot = _build(hash_embedder, stores, tmp_path)
    store = snapshot.store
    query = hash_embedder.embed_query("凤凰县农民工工资")
    only = Where(doc_ids=frozenset({"air.txt", "museum.txt"}))
    assert set(_doc_ids(snapshot, store.dense_search(query, 10, only))) == {"air.txt", "museum.txt"}
    assert store.keyword_search("农民工工资", 5, only) == []
    in_2024 = Where(published_from="2024-01-01", published_to="2024-12-31")
    assert set(_doc_ids(snapshot, store.dense_search(query, 10, in_2024))) == {WAGES, "air.txt"}
    # an undated document never passes a date bound
    since_june = Where(published_from="2024-06-01")
    assert set(_doc_ids(snapshot, store.dense_search(query, 10, since_june))) == {"air.txt", "jobs.txt"}
    hybrid = store.hybrid_search(query, "农民工工资", 5, 10, 60, 1.0, since_june)
    assert set(_doc_ids(snapshot, hybrid)) <= {"air.txt", "jobs.txt"}
    quoted = Where(doc_ids=frozenset({WAGES, 'no "such".txt'}))
    assert set(_doc_ids(snapshot, store.dense_search(query, 5, quoted))) == {WAGES}


def test_update_replaces_and_deletes_documents_and_readers_keep_their_version(
    stores: StoreConfig, tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    first = _build(hash_embedder, stores, tmp_path)
    save_snapshot(first, tmp_path)
    changed = _doc("jobs.txt", "郴州市发布新的技能人才目录，涵盖 52 个职业。", "2025-02-01")
    second = _build(hash_embedder, stores, tmp_path, [changed], old=first, drop=("air.txt",))
    # not yet live: the first version's readers still find what it holds, and nothing of the second
    assert _doc_ids(first, first.store.keyword_search("紧缺工种", 3)) == ["jobs.txt"]
    assert _doc_ids(first, first.store.keyword_search("空气质量", 3)) == ["air.txt"]
    assert first.store.keyword_search("技能人才目录", 3) == []
    save_snapshot(second, tmp_path)
    live = load_snapshot(tmp_path, stores)
    assert len(live.store) == len(live.chunks) == 3 and "air.txt" not in {c.doc_id for c in live.chunks}
    assert live.store.keyword_search("空气质量", 3) == []
    assert live.store.keyword_search("紧缺工种", 3) == []
    assert _doc_ids(live, live.store.keyword_search("技能人才目录", 3)) == ["jobs.txt"]
    query = hash_embedder.embed_query(changed.text)
    assert _doc_ids(live, live.store.dense_search(query, 1)) == ["jobs.txt"]
    np.testing.assert_allclose(live.chunk_vectors(), second.chunk_vectors(), atol=1e-6)


def test_a_write_that_never_went_live_leaves_the_last_version_and_is_cleaned_up(
    stores: StoreConfig, tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    first = _build(hash_embedder, stores, tmp_path)
    save_snapshot(first, tmp_path)
    # a writer that stored its rows and then crashed before saving its version
    _build(hash_embedder, stores, tmp_path, [_doc("lost.txt", "孤儿文档讲述洞庭湖的候鸟。")], old=first)
    live = load_snapshot(tmp_path, stores)
    if stores.kind == "milvus":
        assert _rows_in_milvus(stores, tmp_path) == 5  # the crashed write's row is in the collection...
    assert len(live.store) == 4  # ...but not in the version, and no search returns it
    assert live.store.keyword_search("洞庭湖候鸟", 3) == []
    hits = live.store.dense_search(hash_embedder.embed_query("孤儿文档讲述洞庭湖的候鸟。"), 10)
    assert len(hits) == 4 and {row for row, _ in hits} == set(range(4))
    # the next write that goes live reclaims the crashed write's rows
    third = _build(hash_embedder, stores, tmp_path, [_doc("new.txt", "新的文档。")], old=live)
    save_snapshot(third, tmp_path)
    if stores.kind == "milvus":
        assert _rows_in_milvus(stores, tmp_path) == len(third.chunks) == 5


def test_a_replaced_version_keeps_working_until_the_next_one(
    stores: StoreConfig, tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    first = _build(hash_embedder, stores, tmp_path)
    save_snapshot(first, tmp_path)
    second = _build(hash_embedder, stores, tmp_path, [], old=first, drop=("air.txt",))
    save_snapshot(second, tmp_path)
    # a server still on the first version (it has not reloaded yet) finds what it held
    assert _doc_ids(first, first.store.keyword_search("空气质量", 3)) == ["air.txt"]
    assert first.chunk_vectors().shape == (4, hash_embedder.dimension)
    assert second.store.keyword_search("空气质量", 3) == []
    third = _build(hash_embedder, stores, tmp_path, [_doc("new.txt", "新的文档。")], old=second)
    save_snapshot(third, tmp_path)
    if stores.kind == "milvus":  # two versions on: the dropped document's rows are gone
        assert _rows_in_milvus(stores, tmp_path) == len(third.chunks) == 4
    rows = [0, 2, 0, 3]  # repeated rows read the same vector twice
    np.testing.assert_allclose(third.store.vectors(rows), third.chunk_vectors()[rows], atol=1e-6)


def test_the_service_serves_the_configured_store_and_moves_an_index_without_re_embedding(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    base = dict(index_dir=tmp_path / "index", embedding_model=hash_embedder.name, chunk_size=200, chunk_overlap=20)
    milvus = dict(milvus_uri=str(tmp_path / "m.db"), milvus_collection="moved")
    index_documents(Settings(**base), DOCS, hash_embedder)  # type: ignore[arg-type]
    embedded = open_pipeline(Settings(**base), hash_embedder)  # type: ignore[arg-type]
    settings = Settings(**base, store="milvus", **milvus)  # type: ignore[arg-type]
    stats, version = index_documents(settings, DOCS, hash_embedder)
    assert version is not None and stats.embedded_texts == 0 and len(stats.unchanged) == len(DOCS)
    moved = open_pipeline(settings, hash_embedder)
    assert moved.snapshot.manifest.store == "milvus" and moved.snapshot.store.kind == "milvus"
    for question in ("凤凰县农民工追回工资", "紧缺工种有多少个？"):
        got = moved.retrieve(read_question(question), 3).request.passages
        want = embedded.retrieve(read_question(question), 3).request.passages
        assert [p.chunk.chunk_id for p in got] == [p.chunk.chunk_id for p in want]
    # the version names its store: a server without RAG_STORE set still reads it from Milvus
    assert load_snapshot(settings.index_dir, StoreConfig(milvus_uri=milvus["milvus_uri"])).store.kind == "milvus"


def test_milvus_refuses_a_collection_of_another_dimension_or_another_index(tmp_path: Path) -> None:
    stores = StoreConfig("milvus", milvus_uri=str(tmp_path / "milvus.db"), milvus_collection="dims")
    _build(HashEmbedder(64), stores, tmp_path / "index")
    with pytest.raises(IndexMismatch, match="RAG_MILVUS_COLLECTION"):
        _build(HashEmbedder(32), stores, tmp_path / "index")
    # a second index folder on the same collection would delete the first one's rows
    with pytest.raises(IndexMismatch, match="another index folder"):
        _build(HashEmbedder(64), stores, tmp_path / "other-index")


def test_a_milvus_lite_folder_open_in_another_process_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    from rag.errors import StoreUnavailable

    folder = tmp_path / "busy.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from pymilvus import MilvusClient; MilvusClient({str(folder)!r}); print('open')"
         "; import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        stores = StoreConfig("milvus", milvus_uri=str(folder), milvus_collection="busy")
        with pytest.raises(StoreUnavailable, match="another process has the Milvus Lite folder"):
            _build(HashEmbedder(64), stores, tmp_path / "index")
    finally:
        holder.kill()
        holder.communicate()
