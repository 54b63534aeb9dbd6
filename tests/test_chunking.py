from __future__ import annotations

import pytest

from rag.ingest.chunking import chunk_document
from rag.ingest.loaders import parse_bytes
from rag.types import Article, Document
from tests.conftest import SEED


def _doc(text: str) -> Document:
    return Document("d", "d.txt", text, "h", (Article("T", 0, len(text)),))


@pytest.mark.parametrize(("size", "overlap"), [(120, 0), (300, 60), (500, 100)])
def test_chunks_are_exact_substrings_at_their_offsets(size: int, overlap: int) -> None:
    doc = parse_bytes(SEED.read_bytes(), "seed", str(SEED))
    chunks = chunk_document(doc, size, overlap)
    assert chunks
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= size
        assert chunk.doc_id == "seed" and chunk.title
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_chunks_break_at_chinese_sentence_ends_first() -> None:
    text = "第一句话在这里结束。" * 6 + "第二段，有逗号，也有句号。" * 6
    chunks = chunk_document(_doc(text), chunk_size=40, chunk_overlap=0)
    assert all(c.text.endswith(("。", "，")) for c in chunks[:-1])
    assert sum(c.text.endswith("。") for c in chunks) >= len(chunks) - 1


def test_smaller_chunks_mean_more_chunks() -> None:
    doc = parse_bytes(SEED.read_bytes(), "seed", str(SEED))
    assert len(chunk_document(doc, 150, 30)) > len(chunk_document(doc, 500, 50))
