"""The persistent index: FAISS vectors beside a chunk store and a manifest.

Layout of ``index_dir``::

    CURRENT            name of the live version folder, replaced atomically
    v-000007/          one complete, immutable version
        manifest.json  format, embedding model and dimension, chunker settings,
                       each document's content hash, each file's sha256
        documents.jsonl, chunks.jsonl, sentences.jsonl
        chunks.faiss   IndexFlatIP over the chunk vectors (cosine on unit vectors)
        sentences.npy  sentence vectors, used to pick the answer sentence
        lexicon.npy    vectors of the corpus's Chinese words (see rag.lexicon)
        bm25.*         the keyword index and each chunk's tokens (see rag.lexical)

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
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rag.embedding import Vectors

if TYPE_CHECKING:
    import faiss
from rag.errors import IndexCorrupt, IndexMismatch, IndexMissing
from rag.fileio import fsync_dir, sha256_file, write_atomically
from rag.lexical import (
    LexicalIndex,
    build_lexical,
    chunk_tokens,
    empty_lexical,
    lexical_saved,
    load_lexical,
    save_lexical,
)
from rag.lexicon import Lexicon, empty_lexicon
from rag.types import Article, Chunk, Document

_log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_CURRENT = "CURRENT"
_LOCK = ".lock"
_KEEP_OLD_VERSIONS = 1
_BACKGROUND_SAMPLE = 256
# Chosen from eval/bench_ann.py (README, "Benchmarks"): below this many chunks exact
# search costs under ~8 ms a query (15 ms at 100k, 154 ms at 1M); IVF with 4*sqrt(n)
# lists and nprobe 32 answered in 0.3 ms (100k) and 1.4 ms (1M) at recall@10 1.000,
# where HNSW (M=32) fell to 0.82 at 1M.
IVF_FROM = 50_000
_IVF_NPROBE = 32
REBUILD_HINT = "rebuild it with `rag index --rebuild` (or `make index`)"


def index_type_for(count: int) -> str:
    """Exact search while it is fast enough, an IVF index beyond (see eval/bench_ann.py)."""
    return "flat" if count < IVF_FROM else "ivf"


def _ivf_lists(count: int) -> int:
    return max(1, int(4 * math.sqrt(count)))


def _new_faiss_index(dimension: int, vectors: Vectors) -> faiss.Index:
    """An index over ``vectors`` of the type their number calls for."""
    import faiss

    if index_type_for(len(vectors)) == "ivf":
        quantizer = faiss.IndexFlatIP(dimension)
        nlist = _ivf_lists(len(vectors))
        index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        # k-means on a fixed sample: enough points per list, the same index for the same data.
        sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), 40 * nlist), replace=False)
        index.train(vectors[np.sort(sample)])
        index.add(vectors)
        _prepare_ivf(index)
        return index
    flat = faiss.IndexFlatIP(dimension)
    if len(vectors):
        flat.add(vectors)
    return flat


def _prepare_ivf(index: faiss.IndexIVF) -> None:
    """Search settings and the id map that reconstruction needs (neither is in the file)."""
    index.nprobe = _IVF_NPROBE
    index.make_direct_map()


class FaissIndex:
    """Inner-product search over unit vectors (cosine similarity).

    The index type follows the corpus size (``index_type_for``): exact ``IndexFlatIP``
    for small and medium corpora, ``IndexIVFFlat`` for large ones. Both keep the
    vectors, so an update can carry them over.
    """

    def __init__(self, dimension: int, vectors: Vectors | None = None) -> None:
        data = np.zeros((0, dimension), dtype=np.float32) if vectors is None else vectors
        self._index: faiss.Index = _new_faiss_index(dimension, np.ascontiguousarray(data, dtype=np.float32))

    @property
    def kind(self) -> str:
        return "ivf" if hasattr(self._index, "nprobe") else "flat"

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """The k best rows for one query vector, as (row, score), best first."""
        if len(self) == 0 or k <= 0:
            return []
        scores, rows = self._index.search(query.reshape(1, -1).astype(np.float32), min(k, len(self)))
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def vector(self, row: int) -> Vectors:
        """The stored vector of one row."""
        return np.asarray(self._index.reconstruct(row), dtype=np.float32)

    def vectors(self) -> Vectors:
        """All stored vectors, row-aligned with the chunk store."""
        if len(self) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._index.reconstruct_n(0, len(self)), dtype=np.float32)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> FaissIndex:
        import faiss

        try:
            raw = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorrupt(f"{path}: unreadable FAISS index; {REBUILD_HINT}") from exc
        if hasattr(raw, "nprobe"):
            _prepare_ivf(faiss.extract_index_ivf(raw))
        loaded = cls(raw.d)
        loaded._index = raw
        return loaded


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


@dataclass(frozen=True)
class Snapshot:
    """One immutable version of the index, loaded in memory."""

    manifest: Manifest
    documents: dict[str, Document]
    chunks: tuple[Chunk, ...]
    chunk_index: FaissIndex
    sentences: tuple[Sentence, ...]
    sentence_vectors: Vectors
    lexicon: Lexicon
    lexical: LexicalIndex

    def chunk_vectors(self) -> Vectors:
        return self.chunk_index.vectors()

    @functools.cached_property
    def chunk_counts(self) -> dict[str, int]:
        """Chunks per document id."""
        return dict(collections.Counter(c.doc_id for c in self.chunks))

    @functools.cached_property
    def _sentence_chunk_rows(self) -> npt.NDArray[np.int64]:
        return np.fromiter((s.chunk_row for s in self.sentences), dtype=np.int64, count=len(self.sentences))

    @functools.cached_property
    def background_vectors(self) -> Vectors:
        """An even sample of chunk vectors: what an unrelated question scores against."""
        step = max(1, len(self.chunks) // _BACKGROUND_SAMPLE)
        return np.ascontiguousarray(self.chunk_vectors()[::step][:_BACKGROUND_SAMPLE])

    def sentence_rows(self, chunk_row: int) -> range:
        """Rows of the sentences of one chunk (sentences are stored in chunk order)."""
        rows = self._sentence_chunk_rows
        return range(
            int(np.searchsorted(rows, chunk_row, side="left")), int(np.searchsorted(rows, chunk_row, side="right"))
        )


def empty_snapshot(manifest: Manifest) -> Snapshot:
    """An index with no documents."""
    return Snapshot(
        manifest=manifest,
        documents={},
        chunks=(),
        chunk_index=FaissIndex(manifest.dimension),
        sentences=(),
        sentence_vectors=np.zeros((0, manifest.dimension), dtype=np.float32),
        lexicon=empty_lexicon(manifest.dimension),
        lexical=empty_lexical(),
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
    snapshot.chunk_index.save(folder / "chunks.faiss")
    np.save(folder / "sentences.npy", snapshot.sentence_vectors)
    (folder / "lexicon.json").write_text(json.dumps(snapshot.lexicon.words, ensure_ascii=False), encoding="utf-8")
    np.save(folder / "lexicon.npy", snapshot.lexicon.vectors)
    save_lexical(snapshot.lexical, folder)
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


def has_lexical(index_dir: Path) -> bool:
    """Whether the live version holds its keyword index (versions before it rebuild it on load)."""
    folder = current_version(index_dir)
    return folder is not None and lexical_saved(folder)


@contextlib.contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time per index folder (an advisory lock, released on crash)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / _LOCK).open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def save_snapshot(snapshot: Snapshot, index_dir: Path) -> Path:
    """Write a new version and switch ``CURRENT`` to it atomically; returns its folder."""
    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=index_dir))
    try:
        _write_version(snapshot, tmp)
        final = index_dir / _next_version_name(index_dir)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_atomically(index_dir / _CURRENT, (final.name + "\n").encode(), prefix=f".{_CURRENT}.")
    _prune_old_versions(index_dir, keep=final.name)
    return final


def _prune_old_versions(index_dir: Path, keep: str) -> None:
    """Delete superseded versions (keeping the newest old one) and stale temp folders."""
    old = sorted(p for p in index_dir.glob("v-*") if p.name != keep)
    for path in old[: max(0, len(old) - _KEEP_OLD_VERSIONS)]:
        shutil.rmtree(path, ignore_errors=True)
    for path in index_dir.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)


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
            f"configured embedding model is {embedding_model!r}; set RAG_EMBEDDING_MODEL back, or {REBUILD_HINT}"
        )


def _document_from_row(row: dict[str, object]) -> Document:
    articles = row.pop("articles", [])
    assert isinstance(articles, list)
    return Document(**row, articles=tuple(Article(**a) for a in articles))  # type: ignore[arg-type]


def load_snapshot(index_dir: Path) -> Snapshot:
    """Load the live version; clear errors for a missing, corrupt or outdated index."""
    folder = current_version(index_dir)
    if folder is None:
        raise IndexMissing(f"no index at {index_dir}; build it with `rag index` (or `make index`)")
    if not folder.is_dir():
        raise IndexCorrupt(f"{folder}: the live index version is missing; {REBUILD_HINT}")
    manifest, files = read_manifest(folder)
    _check_files(folder, files)
    try:
        documents = {doc.doc_id: doc for doc in map(_document_from_row, _read_jsonl(folder / "documents.jsonl"))}
        chunks = tuple(Chunk(**c) for c in _read_jsonl(folder / "chunks.jsonl"))  # type: ignore[arg-type]
        sentences = tuple(Sentence(**s) for s in _read_jsonl(folder / "sentences.jsonl"))  # type: ignore[arg-type]
        sentence_vectors = np.load(folder / "sentences.npy")
        lexicon = Lexicon(
            tuple(json.loads((folder / "lexicon.json").read_text(encoding="utf-8"))),
            np.load(folder / "lexicon.npy").astype(np.float32),
        )
    except (ValueError, TypeError, OSError, AssertionError) as exc:
        raise IndexCorrupt(f"{folder}: unreadable chunk store; {REBUILD_HINT}") from exc
    chunk_index = FaissIndex.load(folder / "chunks.faiss")
    lexical = load_lexical(folder)
    if lexical is None:
        _log.warning("%s predates the keyword index; building it in memory (the next update saves it)", folder)
        lexical = build_lexical(chunk_tokens(c) for c in chunks)
    if (
        len(chunk_index) != len(chunks)
        or len(lexical) != len(chunks)
        or len(sentence_vectors) != len(sentences)
        or len(lexicon.words) != len(lexicon.vectors)
    ):
        raise IndexCorrupt(f"{folder}: vectors and chunk store disagree; {REBUILD_HINT}")
    return Snapshot(
        manifest, documents, chunks, chunk_index, sentences, sentence_vectors.astype(np.float32), lexicon, lexical
    )
