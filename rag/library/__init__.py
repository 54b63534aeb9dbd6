"""The document library: adding, replacing and deleting documents, for the CLI and the server alike.

``index_paths`` is ``rag index``: files and folders in, new and changed files read and
embedded, deleted ones dropped, one new index version saved atomically. ``DocumentLibrary``
is the server's upload path: a file is parsed, put in the documents folder with a journal
entry (``rag.library.uploads``), indexed, and the journal entry closed, so that a crash at
any step leaves the folder and the index agreeing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.errors import DocumentExists, DocumentNotFound, IndexMissing, Interrupted, LoaderError
from rag.index.build import Progress, ResumeCache, UpdateStats, missing_under, update_snapshot
from rag.index.embedding import Embedder, InterruptibleEmbedder
from rag.index.snapshot import (
    Snapshot,
    check_compatible,
    has_lexical,
    load_manifest,
    load_snapshot,
    save_snapshot,
    writer_lock,
)
from rag.ingest.loaders import (
    OCR_STAGE,
    SUPPORTED_SUFFIXES,
    NeedsOcr,
    ReadOptions,
    doc_id_for,
    load_paths,
)
from rag.ingest.sandbox import ParseLimits, read_isolated
from rag.ingest.scans import OcrCache
from rag.library.uploads import UploadFolder
from rag.service import ocr_cache_folder, read_options, store_config
from rag.text import unsafe_in_name
from rag.types import Document


@dataclass(frozen=True)
class IndexResult:
    """An index run: what changed, which files failed, where the version was written."""

    stats: UpdateStats
    failed: tuple[tuple[str, str], ...]
    version: Path | None


def _existing(settings: Settings, rebuild: bool) -> Snapshot | None:
    if rebuild:
        return None
    try:
        snapshot = load_snapshot(settings.index_dir, store_config(settings))
    except IndexMissing:
        return None
    check_compatible(snapshot.manifest, settings.embedding_id, None)
    return snapshot


def index_documents(
    settings: Settings,
    documents: list[Document],
    embedder: Embedder,
    drop: Callable[[Snapshot | None], set[str]] = lambda _: set(),
    rebuild: bool = False,
    progress: Progress | None = None,
) -> tuple[UpdateStats, Path | None]:
    """Add or replace documents, drop those ``drop`` picks from the old index, save atomically.

    Vectors are kept as they are made (rag.index.build.ResumeCache), so a build that is
    interrupted and run again embeds only what it had not reached."""
    resume = ResumeCache(
        settings.index_dir / ".resume", settings.embedding_id, settings.chunk_size, settings.chunk_overlap
    )
    with writer_lock(settings.index_dir):
        old = _existing(settings, rebuild)
        if old is not None:
            check_compatible(old.manifest, settings.embedding_id, embedder.dimension)
        gone = drop(old)
        snapshot, stats = update_snapshot(
            old,
            documents,
            embedder,
            settings.chunk_size,
            settings.chunk_overlap,
            drop=gone,
            lexicon_words=settings.lexicon_words,
            stores=store_config(settings),
            index_dir=settings.index_dir,
            progress=progress,
            resume=resume,
        )
        # A version written before the keyword index existed is rewritten once to persist it.
        changed = (
            stats.added
            or stats.updated
            or stats.removed
            or old is None
            or old.store.kind != settings.store
            or not has_lexical(settings.index_dir)
        )
        if changed and progress is not None:
            progress("writing the index", 0, 0)
        version = save_snapshot(snapshot, settings.index_dir) if changed else None
        OcrCache(ocr_cache_folder(settings)).forget({doc.content_hash for doc in documents})
        resume.forget(documents)
    return stats, version


def index_paths(
    settings: Settings,
    paths: list[Path],
    embedder: Embedder,
    rebuild: bool = False,
    progress: Progress | None = None,
    options: ReadOptions | None = None,
) -> IndexResult:
    """Add new and changed files under ``paths``, drop deleted ones, save atomically. Files
    the index holds as they are now are not read again (a folder of scans is not OCR'd twice)."""
    if progress is not None:
        progress("reading files", 0, 0)
    known = {} if rebuild else indexed_hashes(settings.index_dir)
    report = load_paths(paths, options or read_options(settings), known, progress)
    found = [d.doc_id for d in report.documents] + list(report.unchanged)
    stats, version = index_documents(
        settings,
        list(report.documents),
        embedder,
        drop=lambda old: missing_under(old, paths, found),
        rebuild=rebuild,
        progress=progress,
    )
    return IndexResult(stats, report.failed, version)


def indexed_hashes(index_dir: Path) -> dict[str, str]:
    """What the index on disk holds (document id -> content hash); empty before the first index."""
    try:
        return dict(load_manifest(index_dir).document_hashes)
    except IndexMissing:
        return {}


# Held by a whole upload or delete, across processes (rag.index.snapshot.writer_lock).
UPLOADS_LOCK = ".uploads.lock"
# File names are at most 255 bytes on common file systems; the rest is room for a suffix.
MAX_NAME_BYTES = 200


def safe_filename(name: str) -> str:
    """The upload's file name without folders: ``../../etc/passwd.txt`` is ``passwd.txt``,
    so uploads never leave the documents folder. Leading dots go (hidden files are not
    indexed); a name over ``MAX_NAME_BYTES`` is shortened before its extension; a name
    with a control, bidirectional or zero-width character (``rag.text.unsafe_in_name``), or
    without an extension, is refused. The name is taken in NFC, so that the NFC and NFD
    spellings of one name (a Mac's and a PC's) are one file, not two look-alikes.
    """
    if unsafe_in_name(name) >= 0:
        raise LoaderError(
            f"the file name {name!r} has a control, bidirectional or zero-width character; rename the file"
        )
    name = unicodedata.normalize("NFC", name)
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".").strip()
    suffix = Path(base).suffix
    if not base or not suffix or suffix == base:
        raise LoaderError(f"{name!r} is not a usable file name; give it one of: {', '.join(SUPPORTED_SUFFIXES)}")
    if len(base.encode()) > MAX_NAME_BYTES:
        room = MAX_NAME_BYTES - len(suffix.encode())
        base = base[: -len(suffix)].encode()[:room].decode(errors="ignore").rstrip() + suffix
    return base


@dataclass(frozen=True)
class Upload:
    """A file checked before it waits for its turn to be indexed: its safe name, document id and
    bytes, and its document when it could be read at once (a scan is read by OCR in its turn)."""

    filename: str
    doc_id: str
    source: str
    data: bytes
    published: str
    document: Document | None
    scanned_pages: int = 0


class DocumentLibrary:
    """The documents folder (``RAG_DOCUMENTS_DIR``) and the index, changed together.

    Every change runs inside ``writing()``, which holds a lock beside the index across the
    processes of ``rag serve --workers`` (the index itself has its own writer lock, which
    ``rag index`` takes too), and begins by finishing or undoing a
    change a crash interrupted (``recover``). ``check`` reads an upload before it queues, so a
    bad file costs no turn; ``add`` and ``delete`` then change the folder and the index, or
    neither. ``stop`` (a client gone away) interrupts an update before it is saved.
    """

    def __init__(self, settings: Settings, reading: ReadOptions | None = None) -> None:
        self.settings = settings
        self.reading = reading or read_options(settings)
        self.parse_limits = ParseLimits(
            settings.parse_cpu_s, settings.parse_memory_mb * 2**20, settings.parse_wall_s
        )  # fmt: skip
        self.folder = UploadFolder(settings.documents_dir)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the library for one change (the lock beside the index)."""
        with writer_lock(self.settings.index_dir, UPLOADS_LOCK):
            yield

    def recover(self) -> str:
        """Finish or undo the change a crash interrupted (call inside ``writing()``); what was done."""
        return self.folder.recover(indexed_hashes(self.settings.index_dir))

    def check(self, name: str, data: bytes, published: str = "", stop: threading.Event | None = None) -> Upload:
        """The upload checked: a usable name, a type we read, and (but for scans, whose OCR waits
        for the upload's turn) its text read, once, in a child process within the parse limits
        (``rag.ingest.sandbox``); ``stop`` cancels the reading."""
        filename = safe_filename(name)
        folder = self.settings.documents_dir
        doc_id = doc_id_for(folder / filename, folder)
        source = str((folder / filename).resolve())
        text_only = dataclasses.replace(self.reading, scans=False)
        try:
            document = read_isolated(data, doc_id, source, published, text_only, self.parse_limits, stop=stop)
        except NeedsOcr as scan:
            return Upload(filename, doc_id, source, data, published, None, scan.pages)
        return Upload(filename, doc_id, source, data, published, document)

    def add(
        self,
        upload: Upload,
        embedder: Embedder,
        replace: bool = False,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> Document:
        """Put the upload in the folder and the index (inside ``writing()``); ``DocumentExists``
        when a file of its name is there and ``replace`` is not set."""
        self.recover()
        if (self.folder.folder / upload.filename).exists() and not replace:
            raise DocumentExists(f"{upload.filename} already exists; send it with ?replace=true to replace it")
        stop = stop or threading.Event()
        document = upload.document or self._read_scan(upload, progress, stop)
        interruptible = InterruptibleEmbedder(embedder, stop)
        self.folder.put(
            upload.filename, upload.doc_id, upload.data, document.content_hash,
            lambda: index_documents(self.settings, [document], interruptible, progress=progress),
        )  # fmt: skip
        return document

    def delete(
        self,
        doc_id: str,
        documents: Mapping[str, Document],
        embedder: Embedder,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Drop a document of ``documents`` (the index as loaded) from the index, and its file when
        it is an upload (inside ``writing()``); ``DocumentNotFound`` when there is none."""
        self.recover()
        if doc_id not in documents:
            raise DocumentNotFound(f"no document {doc_id!r}; GET /api/documents lists them")
        source = Path(documents[doc_id].source)
        name = source.name if source.parent == self.settings.documents_dir.resolve() else None
        interruptible = InterruptibleEmbedder(embedder, stop or threading.Event())
        if progress is not None:
            progress("removing", 0, 0)
        self.folder.delete(
            name, doc_id, lambda: index_documents(self.settings, [], interruptible, drop=lambda _: {doc_id})
        )

    def index_paths(
        self, paths: list[Path], embedder: Embedder, rebuild: bool = False, progress: Progress | None = None
    ) -> IndexResult:
        """``rag index``: the files under ``paths`` added, changed or dropped (see ``index_paths``)."""
        return index_paths(self.settings, paths, embedder, rebuild, progress, self.reading)

    def _read_scan(self, upload: Upload, progress: Progress | None, stop: threading.Event) -> Document:
        """A scan read by OCR, page by page, its progress told; ``stop`` ends it between pages."""

        def tell(done: int, total: int) -> None:
            if stop.is_set():
                raise Interrupted("the upload was cancelled while its pages were read; nothing changed")
            if progress is not None:
                progress(OCR_STAGE, done, total)

        tell(0, 0)
        # OCR takes seconds a page: the time limits hold for the file and again for each page.
        share = 1 + upload.scanned_pages
        limits = dataclasses.replace(
            self.parse_limits, cpu_s=self.parse_limits.cpu_s * share, wall_s=self.parse_limits.wall_s * share
        )
        return read_isolated(
            upload.data, upload.doc_id, upload.source, upload.published, self.reading, limits, tell, stop
        )
