"""The service end to end on a real Milvus standalone server (issue 28): Milvus 2.3.5 has no
built-in BM25, so the store reports that its keyword half runs in the service, and hybrid
retrieval keeps both halves. Index the seed page, ask, delete a document, ask again."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.process import server_process
from rag.answer.generators import Generators
from rag.answer.stream import Answerer, Query
from rag.config import Settings
from rag.index.embedding import HashEmbedder, SentenceTransformerEmbedder
from rag.library import index_documents, index_paths
from rag.service import open_pipeline
from tests.conftest import QUESTION, SEED

FENGHUANG = "凤凰纪委为农民工解“薪”愁"


class _CountingEmbedder(HashEmbedder):
    """Counts the passages it is asked to embed."""

    def __init__(self, dimension: int) -> None:
        super().__init__(dimension)
        self.passages = 0

    def embed_passages(self, texts: list[str], spans: list[list[tuple[int, int]]]):  # type: ignore[no-untyped-def]
        self.passages += len(texts)
        return super().embed_passages(texts, spans)


def _ask(settings: Settings, embedder: SentenceTransformerEmbedder, question: str) -> tuple[str, list[str], bool]:
    pipeline = open_pipeline(settings, embedder)
    answer = Answerer(pipeline, Generators(settings), settings).open(Query(question, preview=False)).answer()
    return answer.text, [c.title for c in answer.citations], answer.abstained


def test_the_seed_page_is_served_from_a_milvus_server_and_a_delete_reaches_it(
    milvus_server: str, seed_settings: Settings, real_embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    settings = seed_settings.model_copy(
        update={
            "index_dir": tmp_path / "index",
            "store": "milvus",
            "milvus_uri": milvus_server,
            "milvus_collection": f"seed_{uuid.uuid4().hex}",
            "generator": "extractive",
        }
    )
    index_paths(settings, [SEED.parent], real_embedder)
    pipeline = open_pipeline(settings, real_embedder)
    assert pipeline.snapshot.store.lexical == "service"  # type: ignore[attr-defined]
    # The keyword half answers from the server's collection: a word only one article has.
    hits = pipeline.snapshot.store.keyword_search("凤凰县农民工", 3)
    assert hits and pipeline.snapshot.chunks[hits[0][0]].title == FENGHUANG
    text, titles, abstained = _ask(settings, real_embedder, QUESTION)
    assert not abstained and "386" in text and titles == [FENGHUANG]
    fenghuang = next(d for d in pipeline.snapshot.documents.values() if FENGHUANG in [a.title for a in d.articles])
    index_documents(settings, [], real_embedder, drop=lambda _: {fenghuang.doc_id})
    _, titles, abstained = _ask(settings, real_embedder, QUESTION)
    assert abstained or FENGHUANG not in titles


def test_two_instances_over_one_milvus_serve_each_others_uploads_and_deletes(
    milvus_server: str, seed_settings: Settings, real_embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    """Two ``rag serve`` processes (other machines in production) over one Milvus server and one
    index folder: an upload through either is served by both within RAG_INDEX_POLL_S and a
    reload, a delete too, and neither serves a half-written document."""
    collection = f"shared_{uuid.uuid4().hex}"
    settings = seed_settings.model_copy(
        update={"index_dir": tmp_path / "index", "store": "milvus", "milvus_uri": milvus_server,
                "milvus_collection": collection}
    )  # fmt: skip
    index_paths(settings, [SEED.parent], real_embedder)
    env = {
        "RAG_INDEX_DIR": str(tmp_path / "index"),
        "RAG_CACHE_DIR": str(seed_settings.cache_dir),
        "RAG_DOCUMENTS_DIR": str(tmp_path / "documents"),
        "RAG_GENERATOR": "extractive",
        "RAG_STORE": "milvus",
        "RAG_MILVUS_URI": milvus_server,
        "RAG_MILVUS_COLLECTION": collection,
        "RAG_INDEX_POLL_S": "0.5",
    }
    question = {"question": "资兴市新建了几个研学基地？"}
    with (
        server_process(env, tmp_path / "a.log") as (first, _),
        server_process(env, tmp_path / "b.log") as (second, _),
    ):
        created = httpx.post(
            f"{first}/api/documents", json={"name": "z.md", "text": "资兴市新建了 5 个研学基地。"}, timeout=60
        )
        assert created.status_code == 201, created.text
        uploaded = time.monotonic()
        while "z.md" not in httpx.get(f"{second}/api/documents", timeout=10).text:
            assert time.monotonic() - uploaded < 5, "the other instance did not serve the upload"
            time.sleep(0.1)
        answer = httpx.post(f"{second}/api/ask", json=question, timeout=30).json()
        assert "5" in answer["answer"] and answer["citations"][0]["doc_id"] == "documents/z.md"
        assert httpx.delete(f"{second}/api/documents/documents/z.md", timeout=60).status_code == 204
        deleted = time.monotonic()
        while "z.md" in httpx.get(f"{first}/api/documents", timeout=10).text:
            assert time.monotonic() - deleted < 5, "the other instance still served the deleted document"
            time.sleep(0.1)
        assert "documents/z.md" not in str(
            httpx.post(f"{first}/api/ask", json=question, timeout=30).json()["citations"]
        )


def test_a_build_into_milvus_interrupted_while_writing_resumes_without_embedding_again(
    milvus_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build stopped after its vectors were made, halfway through writing them to the
    server, is run again: nothing is embedded a second time, the version goes live, and the
    rows the stopped write left in the collection are reclaimed."""
    import rag.index.milvus
    from rag.index.milvus import _client
    from tests.test_index import _doc

    monkeypatch.setattr(rag.index.milvus, "_BATCH", 2)  # several inserts for a few chunks
    settings = Settings(
        index_dir=tmp_path / "index", embedding_model="hash-64", chunk_size=200, chunk_overlap=20, store="milvus",
        milvus_uri=milvus_server, milvus_collection=f"resume_{uuid.uuid4().hex}",
    )  # fmt: skip
    docs = [_doc(f"{n}.txt", f"第{n}篇文章：湘江边的第{n}个村庄修了新路。") for n in range(6)]
    inserted: list[int] = []
    insert = rag.index.milvus.MilvusStore._call

    def stop_on_the_second_insert(store: Any, what: str, *args: Any, **kwargs: Any) -> Any:
        if what == "insert":
            if inserted:
                raise KeyboardInterrupt
            inserted.append(len(args[0]))
        return insert(store, what, *args, **kwargs)

    monkeypatch.setattr(rag.index.milvus.MilvusStore, "_call", stop_on_the_second_insert)
    with pytest.raises(KeyboardInterrupt):
        index_documents(settings, docs, HashEmbedder(64))
    monkeypatch.setattr(rag.index.milvus.MilvusStore, "_call", insert)
    client = _client(milvus_server, "")

    def rows() -> int:
        found = client.query(
            settings.milvus_collection, filter="", output_fields=["count(*)"], consistency_level="Strong"
        )
        return int(found[0]["count(*)"])

    assert inserted == [2] and rows() == 2  # the stopped write's rows are in the collection, no version names them
    again = _CountingEmbedder(64)
    stats, version = index_documents(settings, docs, again)
    assert version is not None and stats.resumed == 6 and again.passages == 0
    live = open_pipeline(settings, HashEmbedder(64)).snapshot
    assert len(live.store) == len(live.chunks) == rows() == 6  # the stopped write's rows reclaimed
    hits = live.store.dense_search(HashEmbedder(64).embed_query("第3篇文章：湘江边的第3个村庄修了新路。"), 1)
    assert live.chunks[hits[0][0]].doc_id == docs[3].doc_id
