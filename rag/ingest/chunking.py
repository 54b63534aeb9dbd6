"""Pure functions: a cleaned document -> chunks with offsets into its text."""

from __future__ import annotations

import bisect

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.types import Article, Chunk, Document, Region

# Chinese sentence ends first, then their ASCII forms, then clause breaks.
SEPARATORS: tuple[str, ...] = ("\n\n", "\n", "。", "！", "？", "；", "!", "?", ";", "，", ",", " ", "")


def make_splitter(chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    """A splitter that breaks at sentence ends before clause breaks, keeping punctuation."""
    return RecursiveCharacterTextSplitter(
        separators=list(SEPARATORS),
        keep_separator="end",
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        strip_whitespace=True,
    )


def printed_in(regions: tuple[Region, ...], start: int, end: int) -> tuple[Region, ...]:
    """The printed lines (in text order, as rag.ingest.layout.locate gives them) that hold any of
    the text ``start``..``end``."""
    first = bisect.bisect_right(regions, start, key=lambda r: r.end)
    found = []
    for region in regions[first:]:
        if region.start >= end:
            break
        found.append(region)
    return tuple(found)


def chunk_article(
    doc: Document, article: Article, splitter: RecursiveCharacterTextSplitter, first_index: int
) -> list[Chunk]:
    """Split one article of a document; offsets point into ``doc.text``."""
    body = doc.text[article.start : article.end]
    chunks: list[Chunk] = []
    cursor = 0
    for n, piece in enumerate(splitter.split_text(body), start=first_index):
        # Pieces are substrings in order; overlap means the next can start before cursor.
        found = body.find(piece, max(0, cursor - len(piece)))
        if found < 0:
            found = body.find(piece)
        start = article.start + found
        regions = printed_in(doc.regions, start, start + len(piece))
        chunks.append(
            Chunk(
                chunk_id=f"{doc.doc_id}:{n}",
                doc_id=doc.doc_id,
                title=article.title,
                text=piece,
                start=start,
                end=start + len(piece),
                published=doc.published,
                regions=regions,
            )
        )
        cursor = found + len(piece)
    return chunks


def chunk_document(doc: Document, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """All chunks of a document, article by article, numbered in order."""
    splitter = make_splitter(chunk_size, chunk_overlap)
    articles = doc.articles or (Article(title=doc.source, start=0, end=len(doc.text)),)
    chunks: list[Chunk] = []
    for article in articles:
        chunks.extend(chunk_article(doc, article, splitter, len(chunks)))
    return chunks
