"""Read files into cleaned documents split into articles.

Every format becomes the same thing, blocks of text (rag.ingest.cleaning.Block: paragraphs,
headings, new text frames), which are then joined into the document's text and split into
articles (rag.ingest.articles):

    .txt .md .markdown   decoded (UTF-8, GB18030), paragraphs rebuilt (rag.ingest.cleaning)
    .html .htm           the article's text, headline and publication day (rag.ingest.webpages)
    .docx                paragraphs, headings, tables (rag.ingest.office)
    .pdf                 the text layer (pypdf); pages without one are scans
    .png .jpg .tif ...   scans

Scans are read by OCR, in reading order (rag.ingest.scans, rag.ingest.layout), and keep where each
printed line is on its page (``Document.regions``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.errors import LoaderError, UnsupportedFileType
from rag.ingest.articles import block_offsets, split_articles
from rag.ingest.cleaning import Block, split_blocks
from rag.ingest.layout import Line, locate, scan_blocks
from rag.ingest.ocr import OcrEngine
from rag.ingest.scans import (
    IMAGE_SUFFIXES,
    MIN_TEXT_CHARS,
    OcrCache,
    PageProgress,
    ScanLimits,
    image_page_count,
    image_pages,
    ocr_lines,
    pdf_pages,
)
from rag.lang.zh.dates import published_date
from rag.types import Document, Region

TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown")
SUPPORTED_SUFFIXES: tuple[str, ...] = (*TEXT_SUFFIXES, ".html", ".htm", ".pdf", ".docx", *IMAGE_SUFFIXES)
# How much larger than the file a .docx may unpack to (text XML packs about 5 to 10 times),
# and at most: a bound on the upload itself, not on the largest file allowed.
_UNPACK_RATIO = 100
_MAX_UNPACKED = 256 * 2**20


@dataclass(frozen=True)
class ReadOptions:
    """How files are read: the OCR engine for scans (None: scans are refused), the limits,
    and where page OCR results wait until their document is indexed."""

    ocr: OcrEngine | None = None
    limits: ScanLimits = field(default_factory=ScanLimits)
    max_file_bytes: int = 200 * 2**20
    ocr_cache: Path | None = None
    scans: bool = True  # False: a file that needs OCR raises NeedsOcr instead (read it in its turn)


class NeedsOcr(Exception):
    """Raised instead of starting OCR when ``ReadOptions.scans`` is off: the file has ``pages``
    scanned pages."""

    def __init__(self, name: str, pages: int) -> None:
        super().__init__(name, pages)  # both in args: it is pickled back from a reading process
        self.pages = pages

    def __str__(self) -> str:
        return f"{self.args[0]}: {self.pages} scanned pages"


@dataclass(frozen=True)
class LoadReport:
    """What a folder load produced: documents, the files that failed (with why), and the
    ids of files left unread because the index already holds them as they are."""

    documents: tuple[Document, ...]
    failed: tuple[tuple[str, str], ...]
    unchanged: tuple[str, ...] = ()


@dataclass(frozen=True)
class Extracted:
    """A file's blocks before they are joined: its publication day when the format says,
    its page count when it is (partly) a scan, and the printed lines of each scanned run of
    pages with the index of the run's first block."""

    blocks: tuple[Block, ...]
    published: str = ""
    title: str = ""
    pages: int = 0
    scanned: tuple[tuple[int, tuple[Line, ...]], ...] = field(default=())


def decode_text(data: bytes, name: str) -> str:
    """Decode text bytes: UTF-8 (with or without BOM), then GB18030 for older Chinese files."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise LoaderError(f"{name}: not UTF-8 or GB18030 text; convert it to UTF-8 and index it again")


def _read_text(data: bytes, name: str, options: ReadOptions, progress: PageProgress | None) -> Extracted:
    return Extracted(tuple(split_blocks(decode_text(data, name))))


def _read_html(data: bytes, name: str, options: ReadOptions, progress: PageProgress | None) -> Extracted:
    from rag.ingest.webpages import read_page

    page = read_page(decode_text(data, name))
    return Extracted(page.blocks, published=page.published)


def _read_docx(data: bytes, name: str, options: ReadOptions, progress: PageProgress | None) -> Extracted:
    from rag.ingest.office import read_docx

    blocks, title = read_docx(data, name, min(len(data) * _UNPACK_RATIO, _MAX_UNPACKED))
    return Extracted(tuple(blocks), title=title)


def _pdf_texts(data: bytes, name: str, limits: ScanLimits) -> list[str]:
    """The text layer of each page (pypdf), within the page limit."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if len(reader.pages) > limits.max_pages:
            raise LoaderError(f"{name}: {len(reader.pages)} pages, over {limits.max_pages} (RAG_MAX_PAGES); split it")
        return [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, OSError, TypeError, AttributeError, RecursionError) as exc:
        raise LoaderError(f"{name}: cannot read this PDF ({exc.__class__.__name__}); is it damaged?") from exc


def _scanned(text: str) -> bool:
    return sum(1 for ch in text if not ch.isspace()) < MIN_TEXT_CHARS


def _ocr(options: ReadOptions, name: str, pages: int) -> OcrEngine:
    if options.ocr is None:
        raise LoaderError(f"{name}: is a scan (no text layer) and OCR is off; set RAG_OCR=rapidocr to read it")
    if not options.scans:
        raise NeedsOcr(name, pages)
    return options.ocr


def _read_pdf(data: bytes, name: str, options: ReadOptions, progress: PageProgress | None) -> Extracted:
    """Text-layer pages as extracted text, pages without one by OCR, in page order."""
    texts = _pdf_texts(data, name, options.limits)
    scanned = [n for n, text in enumerate(texts, start=1) if _scanned(text)]
    if not scanned:
        return Extracted(tuple(split_blocks("\n".join(texts))))
    ocr = _ocr(options, name, len(scanned))
    digest = content_hash(data)
    cache = OcrCache(options.ocr_cache)
    blocks: list[Block] = []
    runs: list[tuple[int, tuple[Line, ...]]] = []
    done = 0
    page = 1
    while page <= len(texts):
        end = page
        kind = _scanned(texts[page - 1])
        while end <= len(texts) and _scanned(texts[end - 1]) == kind:
            end += 1
        if kind:
            numbers = list(range(page, end))

            def tell(n: int, _: int, before: int = done) -> None:
                if progress is not None:
                    progress(before + n, len(scanned))

            lines = ocr_lines(pdf_pages(data, name, numbers, options.limits), len(numbers), ocr, cache, digest, tell)
            done += len(numbers)
            run = scan_blocks(lines)
            if run:
                runs.append((len(blocks), tuple(lines)))
                blocks.extend(run)
        else:
            run = split_blocks("\n".join(texts[page - 1 : end - 1]))
            blocks.extend(replace(b, new_frame=True) if i == 0 else b for i, b in enumerate(run))
        page = end
    return Extracted(tuple(blocks), pages=len(texts), scanned=tuple(runs))


def _read_image(data: bytes, name: str, options: ReadOptions, progress: PageProgress | None) -> Extracted:
    pages = image_page_count(data, name, options.limits)
    ocr = _ocr(options, name, pages)
    lines = ocr_lines(
        image_pages(data, name, options.limits), pages, ocr, OcrCache(options.ocr_cache), content_hash(data), progress
    )
    blocks = scan_blocks(lines)
    return Extracted(tuple(blocks), pages=pages, scanned=((0, tuple(lines)),) if blocks else ())


Reader = Callable[[bytes, str, ReadOptions, PageProgress | None], Extracted]
_READERS: dict[str, Reader] = {
    **dict.fromkeys(TEXT_SUFFIXES, _read_text),
    ".html": _read_html,
    ".htm": _read_html,
    ".docx": _read_docx,
    ".pdf": _read_pdf,
    **dict.fromkeys(IMAGE_SUFFIXES, _read_image),
}


def _reader(name: str) -> Reader:
    suffix = Path(name).suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        raise UnsupportedFileType(f"{name}: unsupported file type {suffix or '(none)'!r}; supported: {supported}")
    return reader


def extract(
    data: bytes, name: str, options: ReadOptions | None = None, progress: PageProgress | None = None
) -> Extracted:
    """A file's blocks, read by the reader its extension names; ``progress`` hears how many
    scanned pages are read."""
    return _reader(name)(data, name, options or ReadOptions(), progress)


def pages_to_read(data: bytes, name: str, options: ReadOptions | None = None) -> int:
    """How many pages of a file need OCR (0 for text), checking that it can be read and is
    within the limits, without reading it: cheap enough to run before a slow read queues."""
    options = options or ReadOptions()
    _reader(name)
    suffix = Path(name).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        pages = image_page_count(data, name, options.limits)
    elif suffix == ".pdf":
        pages = sum(1 for text in _pdf_texts(data, name, options.limits) if _scanned(text))
    else:
        return 0
    if pages:
        _ocr(options, name, pages)
    return pages


Scanned = tuple[tuple[int, tuple[Line, ...]], ...]


def _regions(blocks: tuple[Block, ...], scanned: Scanned, text: str) -> tuple[Region, ...]:
    offsets = block_offsets(list(blocks))
    found: list[Region] = []
    for first, lines in scanned:
        found.extend(locate(text, lines, offsets[first][0]))
    return tuple(found)


def parse_extracted(
    extracted: Extracted, doc_id: str, source: str, content_hash: str, title: str = "", published: str = ""
) -> Document:
    """Join a file's blocks into a document and split it into articles; ``title`` names an
    untitled document. ``published`` (YYYY-MM-DD) is the day it was published; when not
    given, the format's metadata (a web page's), the file name or the text's dateline say
    (rag.lang.zh.dates), or it is left empty."""
    blocks = extracted.blocks
    text = "\n".join(block.text for block in blocks)
    if not text.strip():
        hint = " (a scan whose pages OCR found no text on)" if extracted.pages else ""
        raise LoaderError(f"{source}: no text found in this file{hint}")
    fallback = title or extracted.title or Path(source).stem
    articles = tuple(split_articles(list(blocks), fallback_title=fallback))
    published = published or extracted.published or published_date(text, Path(source).name)
    regions = _regions(blocks, extracted.scanned, text)
    return Document(doc_id, source, text, content_hash, articles, published, extracted.pages, regions)


def parse_text(raw: str, doc_id: str, source: str, content_hash: str, title: str = "", published: str = "") -> Document:
    """Clean raw text and split it into articles (see ``parse_extracted``)."""
    return parse_extracted(Extracted(tuple(split_blocks(raw))), doc_id, source, content_hash, title, published)


def parse_bytes(
    data: bytes,
    doc_id: str,
    source: str,
    published: str = "",
    options: ReadOptions | None = None,
    progress: PageProgress | None = None,
) -> Document:
    """Read a file's bytes by its extension, clean the text and split it into articles."""
    extracted = extract(data, source, options, progress)
    return parse_extracted(extracted, doc_id, source, content_hash(data), published=published)


def content_hash(data: bytes) -> str:
    """Hash of a file's bytes: decides whether a document changed since the last index."""
    return hashlib.sha256(data).hexdigest()


def doc_id_for(path: Path, root: Path) -> str:
    """A stable document id: the indexed folder's name and the path inside it."""
    root = root.resolve()
    return f"{root.name}/{path.resolve().relative_to(root).as_posix()}"


def discover(paths: list[Path]) -> list[tuple[Path, Path]]:
    """Every file under the given paths, as (file, root it is relative to), sorted."""
    found: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            found.extend((f, path) for f in files)
        elif path.is_file():
            found.append((path, path.parent))
        else:
            raise LoaderError(f"{path}: no such file or folder")
    return found


Progress = Callable[[str, int, int], None]
READING = "reading files"
OCR_STAGE = "reading scanned pages (OCR)"


def load_paths(
    paths: list[Path],
    options: ReadOptions | None = None,
    known: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> LoadReport:
    """Parse every file under the paths; a bad file is reported, the rest still load.

    A file whose content hash ``known`` (document id -> hash, the index's) already holds is
    not read again: it is listed in ``unchanged``. ``progress`` hears files read and, when
    there are scans, pages read by OCR."""
    options = options or ReadOptions()
    known = known or {}
    failed: list[tuple[str, str]] = []
    seen: dict[str, Path] = {}
    todo: list[tuple[Path, Path, str, int]] = []  # files to read, with their pages of OCR
    unchanged: list[str] = []
    for file, root in discover(paths):
        doc_id, resolved = doc_id_for(file, root), file.resolve()
        if seen.get(doc_id) == resolved:  # the same file named twice
            continue
        if (first := seen.setdefault(doc_id, resolved)) != resolved:
            # Two folders with the same name: one id would silently stand for two files.
            failed.append((str(file), f"{file}: has the same document id {doc_id!r} as {first}; index "
                           "folders with different names, or one at a time"))  # fmt: skip
            continue
        try:
            size = file.stat().st_size
            if size > options.max_file_bytes:
                raise LoaderError(f"{file}: {size:,} bytes, over {options.max_file_bytes:,} (RAG_MAX_FILE_BYTES)")
            data = file.read_bytes()
            if known.get(doc_id) == content_hash(data):
                unchanged.append(doc_id)
                continue
            todo.append((file, resolved, doc_id, pages_to_read(data, str(resolved), options)))
        except LoaderError as exc:
            failed.append((str(file), str(exc)))
        except OSError as exc:
            failed.append((str(file), f"{file}: cannot read ({exc.strerror})"))
    scanned_total = sum(pages for *_, pages in todo)
    scanned_done = 0
    parsed: list[Document] = []
    # Read again rather than kept from the first pass: a folder's files are never all in memory.
    for n, (file, resolved, doc_id, pages) in enumerate(todo):

        def tell(done: int, _: int, before: int = scanned_done) -> None:
            if progress is not None:
                progress(OCR_STAGE, before + done, scanned_total)

        if progress is not None and not pages:
            progress(READING, n, len(todo))
        try:
            parsed.append(parse_bytes(file.read_bytes(), doc_id, str(resolved), options=options, progress=tell))
        except LoaderError as exc:
            failed.append((str(file), str(exc)))
        except OSError as exc:
            failed.append((str(file), f"{file}: cannot read ({exc.strerror})"))
        scanned_done += pages
    return LoadReport(tuple(parsed), tuple(failed), tuple(unchanged))
