"""The service end to end on a real Milvus standalone server (issue 28): Milvus 2.3.5 has no
built-in BM25, so the store reports that its keyword half runs in the service, and hybrid
retrieval keeps both halves. Index the seed page, ask, delete a document, ask again."""

from __future__ import annotations

import uuid
from pathlib import Path

from rag.answer.generators import Generators
from rag.answer.stream import Answerer, Query
from rag.config import Settings
from rag.index.embedding import SentenceTransformerEmbedder
from rag.library import index_documents, index_paths
from rag.service import open_pipeline
from tests.conftest import QUESTION, SEED

FENGHUANG = "凤凰纪委为农民工解“薪”愁"


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
