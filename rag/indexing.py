"""Build or update an index snapshot: embed only new or changed documents."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.chunking import chunk_document
from rag.embedding import Embedder, Vectors
from rag.index import FORMAT_VERSION, FaissIndex, Manifest, Sentence, Snapshot, empty_snapshot
from rag.lexical import chunk_tokens, extend_lexical
from rag.lexicon import empty_lexicon, extend_lexicon
from rag.types import Chunk, Document, passage_text

_SENTENCE = re.compile(r"[^。！？!?；;\n]+(?:[。！？!?；;]+[”’」』）)]*)?")


@dataclass(frozen=True)
class UpdateStats:
    """What an index update did, and how long it took."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: tuple[str, ...]
    chunks: int
    embedded_texts: int
    embed_seconds: float
    total_seconds: float


def split_sentences(chunk: Chunk) -> list[tuple[int, int]]:
    """Sentence spans of a chunk, in document offsets (sentences of two or more characters)."""
    spans = []
    for match in _SENTENCE.finditer(chunk.text):
        text = match.group()
        lead = len(text) - len(text.lstrip())
        body = text.strip()
        if len(body) >= 2:
            start = chunk.start + match.start() + lead
            spans.append((start, start + len(body)))
    return spans


def embedding_inputs(
    chunks: list[Chunk], chunk_spans: list[list[tuple[int, int]]]
) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """The texts embedded for chunks, and their sentence spans relative to those texts."""
    texts = [passage_text(c) for c in chunks]
    relative = [
        [(s - c.start + len(text) - len(c.text), e - c.start + len(text) - len(c.text)) for s, e in spans]
        for text, c, spans in zip(texts, chunks, chunk_spans, strict=True)
    ]
    return texts, relative


@dataclass(frozen=True)
class _Rows:
    chunks: list[Chunk]
    chunk_vectors: list[Vectors]
    old_rows: list[int]  # where each kept chunk was in the old snapshot
    sentences: list[tuple[int, int, int]]  # (chunk row, start, end)
    sentence_vectors: list[Vectors]


def _keep_rows(old: Snapshot, keep: set[str]) -> _Rows:
    """The chunks, sentences and vectors of the old documents we keep."""
    rows = _Rows([], [], [], [], [])
    if not keep:
        return rows
    old_vectors = old.chunk_vectors()
    new_row: dict[int, int] = {}
    for row, chunk in enumerate(old.chunks):
        if chunk.doc_id in keep:
            new_row[row] = len(rows.chunks)
            rows.chunks.append(chunk)
            rows.chunk_vectors.append(old_vectors[row])
            rows.old_rows.append(row)
    for n, sentence in enumerate(old.sentences):
        if sentence.chunk_row in new_row:
            rows.sentences.append((new_row[sentence.chunk_row], sentence.start, sentence.end))
            rows.sentence_vectors.append(old.sentence_vectors[n])
    return rows


def _stack(vectors: list[Vectors], dimension: int) -> Vectors:
    return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dimension), dtype=np.float32)


def update_snapshot(
    old: Snapshot | None,
    documents: Iterable[Document],
    embedder: Embedder,
    chunk_size: int,
    chunk_overlap: int,
    drop: Iterable[str] = (),
    lexicon_words: int = 0,
) -> tuple[Snapshot, UpdateStats]:
    """A new snapshot with ``documents`` added or replaced and ``drop`` removed.

    Documents whose content hash is unchanged keep their vectors; a change of chunker
    settings re-chunks and re-embeds every document (from its stored cleaned text).
    New Chinese words go into the cross-lingual lexicon, up to ``lexicon_words`` in all;
    only new chunks are segmented for the keyword index.
    """
    started = time.perf_counter()
    manifest = Manifest(FORMAT_VERSION, embedder.name, embedder.dimension, chunk_size, chunk_overlap, {})
    lexicon = old.lexicon if old else empty_lexicon(embedder.dimension)
    if old is None or (old.manifest.chunk_size, old.manifest.chunk_overlap) != (chunk_size, chunk_overlap):
        carried = dict(old.documents) if old else {}
        old = empty_snapshot(manifest)
    else:
        carried = {}
    incoming = {doc.doc_id: doc for doc in documents}
    dropped = set(drop) - set(incoming)
    unchanged = {
        doc_id
        for doc_id, doc in old.documents.items()
        if doc_id not in dropped and (doc_id not in incoming or incoming[doc_id].content_hash == doc.content_hash)
    }
    fresh = {**{k: v for k, v in carried.items() if k not in dropped}, **incoming}
    fresh = {k: v for k, v in fresh.items() if k not in unchanged}

    rows = _keep_rows(old, unchanged)
    new_chunks = [c for doc in fresh.values() for c in chunk_document(doc, chunk_size, chunk_overlap)]
    first_row = len(rows.chunks)
    rows.chunks.extend(new_chunks)
    chunk_spans = [split_sentences(chunk) for chunk in new_chunks]
    new_sentences = [(first_row + n, s, e) for n, spans in enumerate(chunk_spans) for s, e in spans]
    texts, relative = embedding_inputs(new_chunks, chunk_spans)
    embed_started = time.perf_counter()
    chunk_vectors, sentence_vectors = embedder.embed_passages(texts, relative)
    lexicon, lexicon_embedded = extend_lexicon(lexicon, (d.text for d in fresh.values()), embedder, lexicon_words)
    embed_seconds = time.perf_counter() - embed_started
    rows.chunk_vectors.extend(chunk_vectors)
    rows.sentences.extend(new_sentences)
    rows.sentence_vectors.extend(sentence_vectors)

    all_docs = {k: v for k, v in old.documents.items() if k in unchanged} | fresh
    manifest = Manifest(
        FORMAT_VERSION,
        embedder.name,
        embedder.dimension,
        chunk_size,
        chunk_overlap,
        {doc_id: doc.content_hash for doc_id, doc in sorted(all_docs.items())},
    )
    snapshot = Snapshot(
        manifest=manifest,
        documents=all_docs,
        chunks=tuple(rows.chunks),
        chunk_index=FaissIndex(embedder.dimension, _stack(rows.chunk_vectors, embedder.dimension)),
        sentences=tuple(Sentence(r, s, e) for r, s, e in rows.sentences),
        sentence_vectors=_stack(rows.sentence_vectors, embedder.dimension),
        lexicon=lexicon,
        lexical=extend_lexical(old.lexical, rows.old_rows, [chunk_tokens(c) for c in new_chunks]),
    )
    stats = UpdateStats(
        added=tuple(sorted(k for k in fresh if k not in old.documents and k not in carried)),
        updated=tuple(sorted(k for k in fresh if k in old.documents or k in carried)),
        removed=tuple(sorted(k for k in dropped if k in old.documents or k in carried)),
        unchanged=tuple(sorted(unchanged)),
        chunks=len(rows.chunks),
        embedded_texts=len(new_chunks) + len(new_sentences) + lexicon_embedded,
        embed_seconds=embed_seconds,
        total_seconds=time.perf_counter() - started,
    )
    return snapshot, stats


def missing_under(snapshot: Snapshot | None, roots: Iterable[Path], found: Iterable[str]) -> set[str]:
    """Documents stored from files under ``roots`` that are no longer there."""
    if snapshot is None:
        return set()
    found_ids = set(found)
    dirs = [r.resolve() for r in roots if r.is_dir()]
    gone = set()
    for doc_id, doc in snapshot.documents.items():
        source = Path(doc.source)
        if doc_id not in found_ids and any(source.is_relative_to(d) for d in dirs) and not source.exists():
            gone.add(doc_id)
    return gone
