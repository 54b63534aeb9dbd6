"""Typed records passed between the library's modules."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Article:
    """A span of a document that holds one article, with its headline."""

    title: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """A cleaned source document: its id, where it came from, its text and articles."""

    doc_id: str
    source: str
    text: str
    content_hash: str
    articles: tuple[Article, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A piece of a document's cleaned text, with offsets into that text."""

    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int


def passage_text(chunk: Chunk) -> str:
    """A chunk as embedded, keyword-indexed and shown: its article title, then its text."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk and its relevance score."""

    chunk: Chunk
    score: float


@dataclass(frozen=True)
class Citation:
    """A passage used by an answer.

    ``start``/``end`` locate the passage text in its cleaned document;
    ``evidence_start``/``evidence_end`` the part of it that supports the answer.
    """

    doc_id: str
    title: str
    chunk_id: str
    text: str
    score: float
    start: int
    end: int
    evidence_start: int
    evidence_end: int


@dataclass(frozen=True)
class Answer:
    """What a generator returns for a question."""

    text: str
    abstained: bool
    citations: tuple[Citation, ...]
    evidence: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    abstain_reason: str = ""
    warnings: tuple[str, ...] = ()
