"""Build or update an index snapshot: embed only new or changed documents."""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.fileio import write_atomically
from rag.index.embedding import Embedder, Vectors
from rag.index.lexicon import empty_lexicon, extend_lexicon
from rag.index.snapshot import FORMAT_VERSION, Manifest, Sentence, Snapshot, empty_snapshot
from rag.index.store import StoreConfig
from rag.index.stores import new_store
from rag.ingest.chunking import chunk_document
from rag.lang.zh.script import split_sentences
from rag.types import Chunk, Document, passage_text


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
    resumed: int = 0  # documents whose vectors an interrupted build had already made


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
    old_rows: list[int]  # where each kept chunk was in the old snapshot
    sentences: list[tuple[int, int, int]]  # (chunk row, start, end)
    sentence_vectors: list[Vectors]


def _keep_rows(old: Snapshot, keep: set[str]) -> _Rows:
    """The chunks, sentences and vectors of the old documents we keep."""
    rows = _Rows([], [], [], [])
    if not keep:
        return rows
    new_row: dict[int, int] = {}
    for row, chunk in enumerate(old.chunks):
        if chunk.doc_id in keep:
            new_row[row] = len(rows.chunks)
            rows.chunks.append(chunk)
            rows.old_rows.append(row)
    for n, sentence in enumerate(old.sentences):
        if sentence.chunk_row in new_row:
            rows.sentences.append((new_row[sentence.chunk_row], sentence.start, sentence.end))
            rows.sentence_vectors.append(old.sentence_vectors[n])
    return rows


def _stack(vectors: list[Vectors], dimension: int) -> Vectors:
    return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dimension), dtype=np.float32)


class Progress(Protocol):
    """Told how far a build is: its stage and, where it can be counted, ``done`` of ``total``
    (new chunks embedded); a stage that cannot be counted reports 0 of 0."""

    def __call__(self, stage: str, done: int, total: int) -> None: ...


EMBEDDING = "embedding chunks"


class ResumeCache:
    """Vectors of documents embedded by a build that has not gone live yet.

    Each document's vectors are written (atomically) as soon as they are made, keyed by
    the embedding model, the chunker settings and the document's id and content hash; an
    interrupted build run again takes them instead of embedding the document again. A
    document's entry is dropped once a live version holds it.
    """

    def __init__(self, folder: Path, model: str, chunk_size: int, chunk_overlap: int) -> None:
        self.folder = folder
        self._salt = f"{model}\n{chunk_size}\n{chunk_overlap}"

    def _path(self, doc: Document) -> Path:
        key = hashlib.sha256(f"{self._salt}\n{doc.doc_id}\n{doc.content_hash}".encode()).hexdigest()
        return self.folder / f"{key[:40]}.npz"

    def get(self, doc: Document, chunks: int, sentences: int, dimension: int) -> tuple[Vectors, Vectors] | None:
        """The document's chunk and sentence vectors, when a build made them (of the expected shapes)."""
        try:
            with np.load(self._path(doc)) as saved:
                found = (saved["chunks"], saved["sentences"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        if found[0].shape != (chunks, dimension) or found[1].shape != (sentences, dimension):
            return None
        return found

    def put(self, doc: Document, chunk_vectors: Vectors, sentence_vectors: Vectors) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, chunks=chunk_vectors, sentences=sentence_vectors)
        write_atomically(self._path(doc), buffer.getvalue(), prefix=".part-", sync=False)

    def forget(self, documents: Iterable[Document]) -> None:
        """Drop the entries of these documents (once a live version holds them); the folder
        goes when it is empty. Entries of an interrupted build's other documents stay."""
        for doc in documents:
            self._path(doc).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.folder.rmdir()


@dataclass(frozen=True)
class _Embedded:
    chunk_vectors: Vectors
    sentence_vectors: Vectors
    texts: int  # chunks and sentences embedded now
    resumed: int  # documents taken from the resume cache


# New chunks are embedded in groups of about this many, so progress and the resume cache
# advance while a large build runs.
_EMBED_GROUP = 256


def _embed_documents(
    documents: list[Document],
    per_document: list[list[Chunk]],
    chunk_spans: list[list[tuple[int, int]]],
    embedder: Embedder,
    progress: Progress | None,
    resume: ResumeCache | None,
) -> _Embedded:
    """Chunk and sentence vectors of new documents, in chunk order, in groups of documents."""
    dimension = embedder.dimension
    total = sum(len(chunks) for chunks in per_document)
    done, texts, resumed = 0, 0, 0
    results: list[tuple[Vectors, Vectors] | None] = [None] * len(documents)
    starts = np.concatenate([[0], np.cumsum([len(c) for c in per_document], dtype=np.int64)]).astype(int)
    sentence_counts = [
        sum(len(chunk_spans[i]) for i in range(starts[n], starts[n + 1])) for n in range(len(starts) - 1)
    ]
    # What an interrupted build already made, first: the progress starts from it, so the
    # rate it shows is this run's.
    if resume is not None:
        for n, doc in enumerate(documents):
            results[n] = resume.get(doc, len(per_document[n]), sentence_counts[n], dimension)
            if results[n] is not None:
                resumed += 1
                done += len(per_document[n])
    group: list[int] = []

    def embed_group() -> None:
        nonlocal done, texts
        if not group:
            return
        chunks = [c for n in group for c in per_document[n]]
        spans = [chunk_spans[i] for n in group for i in range(starts[n], starts[n + 1])]
        inputs, relative = embedding_inputs(chunks, spans)
        chunk_vectors, sentence_vectors = embedder.embed_passages(inputs, relative)
        c_at = s_at = 0
        for n in group:
            c_count, s_count = len(per_document[n]), sentence_counts[n]
            found = (chunk_vectors[c_at : c_at + c_count], sentence_vectors[s_at : s_at + s_count])
            results[n] = found
            if resume is not None:
                resume.put(documents[n], *found)
            c_at, s_at = c_at + c_count, s_at + s_count
        texts += len(chunks) + s_at
        done += len(chunks)
        group.clear()
        if progress is not None:
            progress(EMBEDDING, done, total)

    if progress is not None and total:
        progress(EMBEDDING, done, total)
    for n in range(len(documents)):
        if results[n] is not None:
            continue
        group.append(n)
        if sum(len(per_document[g]) for g in group) >= _EMBED_GROUP:
            embed_group()
    embed_group()
    chunk_parts = [r[0] for r in results if r is not None and len(r[0])]
    sentence_parts = [r[1] for r in results if r is not None and len(r[1])]
    return _Embedded(
        np.concatenate(chunk_parts).astype(np.float32) if chunk_parts else np.zeros((0, dimension), np.float32),
        np.concatenate(sentence_parts).astype(np.float32) if sentence_parts else np.zeros((0, dimension), np.float32),
        texts,
        resumed,
    )


def update_snapshot(
    old: Snapshot | None,
    documents: Iterable[Document],
    embedder: Embedder,
    chunk_size: int,
    chunk_overlap: int,
    drop: Iterable[str] = (),
    lexicon_words: int = 0,
    stores: StoreConfig | None = None,
    index_dir: Path = Path("index"),
    progress: Progress | None = None,
    resume: ResumeCache | None = None,
) -> tuple[Snapshot, UpdateStats]:
    """A new snapshot with ``documents`` added or replaced and ``drop`` removed.

    Documents whose content hash is unchanged keep their vectors; a change of chunker
    settings re-chunks and re-embeds every document (from its stored cleaned text).
    New Chinese words go into the cross-lingual lexicon, up to ``lexicon_words`` in all;
    only new chunks are segmented for the keyword index.

    The new version goes to the store ``stores`` names (``index_dir`` locates Milvus Lite's
    default folder); an index in another store moves there with its vectors, re-embedding nothing.
    ``progress`` hears how many new chunks are embedded; ``resume`` keeps each document's
    vectors as soon as they are made and hands back those an interrupted build made.
    """
    started = time.perf_counter()
    manifest = Manifest(FORMAT_VERSION, embedder.name, embedder.dimension, chunk_size, chunk_overlap, {})
    lexicon = old.lexicon if old else empty_lexicon(embedder.dimension)
    target = stores or StoreConfig()
    if old is None or (old.manifest.chunk_size, old.manifest.chunk_overlap) != (chunk_size, chunk_overlap):
        carried = dict(old.documents) if old else {}
        old = empty_snapshot(manifest, new_store(target, index_dir, embedder.dimension))
    else:
        carried = {}
        if old.store.kind != target.kind:
            moved = new_store(target, index_dir, embedder.dimension)
            old = replace(old, store=moved.updated([], old.chunks, old.store.vectors(range(len(old.chunks)))))
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
    per_document = [chunk_document(doc, chunk_size, chunk_overlap) for doc in fresh.values()]
    new_chunks = [c for chunks in per_document for c in chunks]
    first_row = len(rows.chunks)
    rows.chunks.extend(new_chunks)
    chunk_spans = [split_sentences(chunk) for chunk in new_chunks]
    new_sentences = [(first_row + n, s, e) for n, spans in enumerate(chunk_spans) for s, e in spans]
    embed_started = time.perf_counter()
    embedded = _embed_documents(list(fresh.values()), per_document, chunk_spans, embedder, progress, resume)
    lexicon, lexicon_embedded = extend_lexicon(
        lexicon, [d.text for d in fresh.values()], embedder, lexicon_words, progress
    )
    if progress is not None:
        progress("indexing vectors and keywords", 0, 0)
    embed_seconds = time.perf_counter() - embed_started
    chunk_vectors = embedded.chunk_vectors
    rows.sentences.extend(new_sentences)
    rows.sentence_vectors.extend(embedded.sentence_vectors)

    all_docs = {k: v for k, v in old.documents.items() if k in unchanged} | fresh
    manifest = Manifest(
        FORMAT_VERSION,
        embedder.name,
        embedder.dimension,
        chunk_size,
        chunk_overlap,
        {doc_id: doc.content_hash for doc_id, doc in sorted(all_docs.items())},
        store=target.kind,
    )
    chunks = tuple(rows.chunks)
    snapshot = Snapshot(
        manifest=manifest,
        documents=all_docs,
        chunks=chunks,
        store=old.store.updated(
            rows.old_rows, chunks, np.asarray(chunk_vectors, dtype=np.float32).reshape(-1, embedder.dimension)
        ),
        sentences=tuple(Sentence(r, s, e) for r, s, e in rows.sentences),
        sentence_vectors=_stack(rows.sentence_vectors, embedder.dimension),
        lexicon=lexicon,
    )
    stats = UpdateStats(
        added=tuple(sorted(k for k in fresh if k not in old.documents and k not in carried)),
        updated=tuple(sorted(k for k in fresh if k in old.documents or k in carried)),
        removed=tuple(sorted(k for k in dropped if k in old.documents or k in carried)),
        unchanged=tuple(sorted(unchanged)),
        chunks=len(rows.chunks),
        embedded_texts=embedded.texts + lexicon_embedded,
        resumed=embedded.resumed,
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
