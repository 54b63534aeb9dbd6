"""The persistent index: FAISS vectors beside a chunk store and a manifest.

Layout of ``index_dir``::

    CURRENT            name of the live version folder, replaced atomically
    v-000007/          one complete, immutable version
        manifest.json  format, embedding model and dimension, chunker settings,
                       each document's content hash, each file's sha256
        documents.jsonl, chunks.jsonl, sentences.jsonl
        chunks.faiss   IndexFlatIP over the chunk vectors (cosine on unit vectors)
        sentences.npy  sentence vectors (float16), used to pick the answer sentence;
                       memory-mapped: only the rows questions read are in memory
        lexicon.npy    vectors of the corpus's Chinese words (see rag.index.lexicon)
        bm25.*         the keyword index and each chunk's tokens (see rag.index.lexical)

A writer builds a new version in a temporary folder, renames it into place and only
then points ``CURRENT`` at it, so a crash at any moment leaves the last good version
readable. Readers never see a half-written version.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.errors import IndexCorrupt, IndexMismatch, IndexMissing
from rag.fileio import fsync_dir, sha256_file, write_atomically
from rag.index.embedded import EmbeddedStore
from rag.index.embedding import Vectors
from rag.index.lexical import lexical_saved
from rag.index.lexicon import Lexicon, empty_lexicon
from rag.index.store import REBUILD_HINT, ChunkStore, StoreConfig
from rag.index.stores import open_store
from rag.types import Article, Chunk, Document, Region

_log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_CURRENT = "CURRENT"
_LOCK = ".lock"
_KEEP_OLD_VERSIONS = 1
_BACKGROUND_SAMPLE = 256


@dataclass(frozen=True)
class Sentence:
    """A sentence of a chunk, located in its document, for answer extraction."""

    chunk_row: int
    start: int
    end: int


@dataclass(frozen=True)
class Manifest:
    """What an index was built with; a query-time model must match it."""

    format_version: int
    embedding_model: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    document_hashes: dict[str, str]
    store: str = "embedded"


@dataclass(frozen=True)
class Snapshot:
    """One immutable version of the index, loaded in memory."""

    manifest: Manifest
    documents: dict[str, Document]
    chunks: tuple[Chunk, ...]
    store: ChunkStore
    sentences: tuple[Sentence, ...]
    sentence_vectors: npt.NDArray[np.floating[Any]]  # float16 on disk, mapped; float32 while building
    lexicon: Lexicon

    def chunk_vectors(self) -> Vectors:
        """Every chunk's vector, row-aligned with ``chunks`` (read from the store)."""
        return self.store.vectors(range(len(self.chunks)))

    @functools.cached_property
    def chunk_counts(self) -> dict[str, int]:
        """Chunks per document id."""
        return dict(collections.Counter(c.doc_id for c in self.chunks))

    @functools.cached_property
    def _sentence_chunk_rows(self) -> npt.NDArray[np.int64]:
        return np.fromiter((s.chunk_row for s in self.sentences), dtype=np.int64, count=len(self.sentences))

    @functools.cached_property
    def background_rows(self) -> range:
        """An even sample of chunk rows: what an unrelated question scores against."""
        step = max(1, len(self.chunks) // _BACKGROUND_SAMPLE)
        return range(0, len(self.chunks), step)[:_BACKGROUND_SAMPLE]

    @functools.cached_property
    def background_vectors(self) -> Vectors:
        """The vectors of ``background_rows``."""
        return np.ascontiguousarray(self.store.vectors(self.background_rows))

    @functools.cached_property
    def background_articles(self) -> tuple[tuple[str, str], ...]:
        """The article (document id, title) of each of ``background_rows``."""
        return tuple((self.chunks[row].doc_id, self.chunks[row].title) for row in self.background_rows)

    def sentence_rows(self, chunk_row: int) -> range:
        """Rows of the sentences of one chunk (sentences are stored in chunk order)."""
        rows = self._sentence_chunk_rows
        return range(
            int(np.searchsorted(rows, chunk_row, side="left")), int(np.searchsorted(rows, chunk_row, side="right"))
        )


def empty_snapshot(manifest: Manifest, store: ChunkStore | None = None) -> Snapshot:
    """An index with no documents (in an empty embedded store unless one is given)."""
    return Snapshot(
        manifest=manifest,
        documents={},
        chunks=(),
        store=store if store is not None else EmbeddedStore.empty(manifest.dimension),
        sentences=(),
        sentence_vectors=np.zeros((0, manifest.dimension), dtype=np.float32),
        lexicon=empty_lexicon(manifest.dimension),
    )


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _write_version(snapshot: Snapshot, folder: Path) -> None:
    """Write every file of a version into ``folder``, manifest last, all fsynced."""
    _write_jsonl(folder / "documents.jsonl", [asdict(d) for d in snapshot.documents.values()])
    _write_jsonl(folder / "chunks.jsonl", [asdict(c) for c in snapshot.chunks])
    _write_jsonl(folder / "sentences.jsonl", [asdict(s) for s in snapshot.sentences])
    snapshot.store.save(folder)
    np.save(folder / "sentences.npy", np.asarray(snapshot.sentence_vectors, dtype=np.float16))
    (folder / "lexicon.json").write_text(json.dumps(snapshot.lexicon.words, ensure_ascii=False), encoding="utf-8")
    np.save(folder / "lexicon.npy", snapshot.lexicon.vectors)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir())}
    manifest = {**asdict(snapshot.manifest), "files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    for path in folder.iterdir():
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
    fsync_dir(folder)


def _next_version_name(index_dir: Path) -> str:
    numbers = [int(p.name[2:]) for p in index_dir.glob("v-*") if p.name[2:].isdigit()]
    return f"v-{max(numbers, default=0) + 1:06d}"


def current_version(index_dir: Path) -> Path | None:
    """The live version folder, or None when no index was ever written."""
    pointer = index_dir / _CURRENT
    if not pointer.exists():
        versions = sorted(p.name for p in index_dir.glob("v-*") if p.is_dir())
        if versions:
            # Starting afresh here would serve (and then prune) an index without the corpus.
            raise IndexCorrupt(
                f"{pointer} is missing, but versions exist ({', '.join(versions)}); point it at the newest "
                f"good one (`echo {versions[-1]} > {pointer}`) or {REBUILD_HINT}"
            )
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    if not name.startswith("v-") or "/" in name:
        raise IndexCorrupt(f"{pointer}: does not name an index version; {REBUILD_HINT}")
    return index_dir / name


def live_version(index_dir: Path) -> str:
    """The live version's name ("" when there is none, or the pointer is unreadable): cheap
    enough to poll, so that a server notices a version another process wrote."""
    try:
        return (index_dir / _CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def has_lexical(index_dir: Path) -> bool:
    """Whether the live version holds its keyword index (embedded versions before it rebuild it on load)."""
    folder = current_version(index_dir)
    return folder is not None and (lexical_saved(folder) or read_manifest(folder)[0].store != "embedded")


@contextlib.contextmanager
def writer_lock(index_dir: Path, name: str = _LOCK) -> Iterator[None]:
    """One writer at a time per index folder (an advisory lock on ``index_dir/name``, released
    on crash). Another ``name`` is another lock: the server's uploads take ``.uploads.lock``
    around whole changes whose index updates take ``.lock`` inside."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / name).open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def save_snapshot(snapshot: Snapshot, index_dir: Path) -> Path:
    """Write a new version and switch ``CURRENT`` to it atomically; returns its folder."""
    index_dir.mkdir(parents=True, exist_ok=True)
    try:
        previous = current_version(index_dir)
    except IndexCorrupt:
        previous = None
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=index_dir))
    try:
        _write_version(snapshot, tmp)
        final = index_dir / _next_version_name(index_dir)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_atomically(index_dir / _CURRENT, (final.name + "\n").encode(), prefix=f".{_CURRENT}.")
    snapshot.store.commit(previous)
    _prune_old_versions(index_dir, keep=final.name)
    return final


def _prune_old_versions(index_dir: Path, keep: str) -> None:
    """Delete superseded versions (keeping the newest old one) and stale temp folders."""
    old = sorted(p for p in index_dir.glob("v-*") if p.name != keep)
    for path in old[: max(0, len(old) - _KEEP_OLD_VERSIONS)]:
        shutil.rmtree(path, ignore_errors=True)
    for path in index_dir.glob(".tmp-*"):  # folders of a build, files of an atomic write
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _check_files(folder: Path, recorded: dict[str, str]) -> None:
    for name, digest in recorded.items():
        path = folder / name
        if not path.exists():
            raise IndexCorrupt(f"{folder}: {name} is missing; {REBUILD_HINT}")
        if sha256_file(path) != digest:
            raise IndexCorrupt(f"{folder}: {name} does not match its checksum; {REBUILD_HINT}")


def load_manifest(index_dir: Path) -> Manifest:
    """The live version's manifest alone (which documents, with their content hashes)."""
    folder = current_version(index_dir)
    if folder is None:
        raise IndexMissing(f"no index at {index_dir}; build it with `rag index` (or `make index`)")
    return read_manifest(folder)[0]


def read_manifest(folder: Path) -> tuple[Manifest, dict[str, str]]:
    """A version's manifest and the checksums of its files."""
    try:
        raw = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        files = {str(k): str(v) for k, v in raw.pop("files").items()}
        manifest = Manifest(**raw)
    except FileNotFoundError as exc:
        raise IndexCorrupt(f"{folder}: manifest.json is missing; {REBUILD_HINT}") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise IndexCorrupt(f"{folder}: manifest.json is unreadable; {REBUILD_HINT}") from exc
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatch(
            f"{folder}: index format {manifest.format_version}, this version reads {FORMAT_VERSION}; {REBUILD_HINT}"
        )
    return manifest, files


def check_compatible(manifest: Manifest, embedding_model: str, dimension: int | None) -> None:
    """Refuse an index built with another embedding model or dimension."""
    if manifest.embedding_model != embedding_model or (dimension is not None and manifest.dimension != dimension):
        raise IndexMismatch(
            f"the index was built with {manifest.embedding_model!r} ({manifest.dimension} dimensions) but the "
            f"configured embedding model is {embedding_model!r}; set RAG_EMBEDDING_MODEL (and "
            f"RAG_EMBEDDING_PRECISION) back, or {REBUILD_HINT}"
        )


def _regions_from_rows(rows: object) -> tuple[Region, ...]:
    assert isinstance(rows, list)
    return tuple(Region(r["start"], r["end"], r["page"], tuple(r["box"])) for r in rows)


def _document_from_row(row: dict[str, object]) -> Document:
    articles = row.pop("articles", [])
    assert isinstance(articles, list)
    regions = _regions_from_rows(row.pop("regions", []))
    return Document(**row, articles=tuple(Article(**a) for a in articles), regions=regions)  # type: ignore[arg-type]


def _chunk_from_row(row: dict[str, object]) -> Chunk:
    regions = _regions_from_rows(row.pop("regions", []))
    return Chunk(**row, regions=regions)  # type: ignore[arg-type]


def load_snapshot(index_dir: Path, stores: StoreConfig | None = None) -> Snapshot:
    """Load the live version; clear errors for a missing, corrupt or outdated index. The
    manifest says which store the version is in; ``stores`` says how Milvus is reached."""
    folder = current_version(index_dir)
    if folder is None:
        raise IndexMissing(f"no index at {index_dir}; build it with `rag index` (or `make index`)")
    if not folder.is_dir():
        raise IndexCorrupt(f"{folder}: the live index version is missing; {REBUILD_HINT}")
    manifest, files = read_manifest(folder)
    _check_files(folder, files)
    try:
        documents = {doc.doc_id: doc for doc in map(_document_from_row, _read_jsonl(folder / "documents.jsonl"))}
        chunks = tuple(map(_chunk_from_row, _read_jsonl(folder / "chunks.jsonl")))
        sentences = tuple(Sentence(**s) for s in _read_jsonl(folder / "sentences.jsonl"))  # type: ignore[arg-type]
        sentence_vectors = np.load(folder / "sentences.npy", mmap_mode="r")
        lexicon = Lexicon(
            tuple(json.loads((folder / "lexicon.json").read_text(encoding="utf-8"))),
            np.load(folder / "lexicon.npy").astype(np.float32),
        )
    except (ValueError, TypeError, OSError, AssertionError, KeyError) as exc:
        raise IndexCorrupt(f"{folder}: unreadable chunk store; {REBUILD_HINT}") from exc
    if len(sentence_vectors) != len(sentences) or len(lexicon.words) != len(lexicon.vectors):
        raise IndexCorrupt(f"{folder}: vectors and chunk store disagree; {REBUILD_HINT}")
    store = open_store(manifest.store, stores or StoreConfig(), index_dir, folder, chunks)
    return Snapshot(manifest, documents, chunks, store, sentences, sentence_vectors, lexicon)
