"""Read files into cleaned documents split into articles."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.articles import split_articles
from rag.cleaning import split_blocks
from rag.dates import published_date
from rag.errors import LoaderError, UnsupportedFileType
from rag.types import Document

SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")


@dataclass(frozen=True)
class LoadReport:
    """What a folder load produced: documents and the files that failed, with why."""

    documents: tuple[Document, ...]
    failed: tuple[tuple[str, str], ...]


def decode_text(data: bytes, name: str) -> str:
    """Decode text bytes: UTF-8 (with or without BOM), then GB18030 for older Chinese files."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise LoaderError(f"{name}: not UTF-8 or GB18030 text; convert it to UTF-8 and index it again")


def _read_html(data: bytes, name: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(data, name), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    body = soup.get_text("\n\n", strip=True)
    return f"{title}\n\n{body}" if title else body


def _read_pdf(data: bytes, name: str) -> str:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        raise LoaderError(f"{name}: cannot read this PDF ({exc.__class__.__name__}); is it damaged?") from exc
    text = "\n".join(pages)
    if not text.strip():
        raise LoaderError(f"{name}: the PDF has no extractable text (scanned images need OCR first)")
    return text


_READERS: dict[str, Callable[[bytes, str], str]] = {
    ".txt": decode_text,
    ".md": decode_text,
    ".markdown": decode_text,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
}


def read_raw(data: bytes, name: str) -> str:
    """The raw text of a file's bytes, chosen by the file name's extension."""
    suffix = Path(name).suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        raise UnsupportedFileType(f"{name}: unsupported file type {suffix or '(none)'!r}; supported: {supported}")
    return reader(data, name)


def parse_text(
    raw: str, doc_id: str, source: str, content_hash: str, title: str = "", published: str = "", html: str = ""
) -> Document:
    """Clean raw text and split it into articles; ``title`` names an untitled document.
    ``published`` (YYYY-MM-DD) is the day it was published; when not given, it is read from
    the HTML's metadata, the file name or the text's dateline (rag.dates), or left empty."""
    blocks = split_blocks(raw)
    text = "\n".join(block.text for block in blocks)
    if not text.strip():
        raise LoaderError(f"{source}: no text found in this file")
    articles = tuple(split_articles(blocks, fallback_title=title or Path(source).stem))
    published = published or published_date(text, Path(source).name, html)
    return Document(doc_id, source, text, content_hash, articles, published)


def parse_bytes(data: bytes, doc_id: str, source: str, published: str = "") -> Document:
    """Read a file's bytes by its extension, clean the text and split it into articles."""
    html = decode_text(data, source) if Path(source).suffix.lower() in (".html", ".htm") else ""
    return parse_text(read_raw(data, source), doc_id, source, content_hash(data), published=published, html=html)


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


def load_paths(paths: list[Path]) -> LoadReport:
    """Parse every file under the paths; a bad file is reported, the rest still load."""
    parsed: list[Document] = []
    failed: list[tuple[str, str]] = []
    seen: dict[str, Path] = {}
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
            parsed.append(parse_bytes(file.read_bytes(), doc_id, str(resolved)))
        except LoaderError as exc:
            failed.append((str(file), str(exc)))
        except OSError as exc:
            failed.append((str(file), f"{file}: cannot read ({exc.strerror})"))
    return LoadReport(tuple(parsed), tuple(failed))
