"""Scanned pages: images and PDF pages without a text layer, read by OCR, and shown again.

A page is an image file's frame (``.png``, ``.jpg``, a multi-page ``.tif``) or a PDF page
rendered by pypdfium2 (PDFium, Apache-2.0; PyMuPDF would be AGPL in an MIT project). Its
OCR boxes are put in reading order (rag.ingest.layout); the pages' lines then make one flow of
blocks, so a paragraph may run on to the next page. The same page is rendered again for
the chat page, where a citation's boxes (fractions of the page) are drawn on it.

Each page's OCR result is kept in ``ReadOptions.cache`` until its document is indexed, so
an interrupted ``rag index`` reads no page twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.errors import DocumentChanged, LoaderError
from rag.fileio import write_atomically
from rag.ingest.layout import Line, page_lines
from rag.ingest.ocr import OcrEngine
from rag.types import TextBox

if TYPE_CHECKING:
    from PIL.Image import Image as PilImage

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
# A PDF page with fewer characters than this in its text layer is a scanned page.
MIN_TEXT_CHARS = 10
# PDFium is not thread-safe: one call into it at a time, in this process.
_PDFIUM = threading.Lock()

PageProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScanLimits:
    """What a scan may cost: pages per file, pixels per page, and the PDF rendering scale."""

    max_pages: int = 200
    max_image_pixels: int = 80_000_000
    dpi: int = 300


def _too_large(name: str, width: int, height: int, limits: ScanLimits) -> LoaderError:
    return LoaderError(
        f"{name}: the image is {width}x{height} pixels, over {limits.max_image_pixels:,} "
        "(RAG_MAX_IMAGE_PIXELS); scan at a lower resolution"
    )


def _open_image(data: bytes, name: str, limits: ScanLimits) -> PilImage:
    """The image file opened (its header read, nothing decoded), within the limits."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns from 89 MP; RAG_MAX_IMAGE_PIXELS decides here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise LoaderError(f"{name}: the image has too many pixels (RAG_MAX_IMAGE_PIXELS)") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise LoaderError(f"{name}: cannot read this image ({exc.__class__.__name__}); is it damaged?") from exc
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise _too_large(name, width, height, limits)
    frames = getattr(image, "n_frames", 1)
    if frames > limits.max_pages:
        raise LoaderError(f"{name}: {frames} pages, over {limits.max_pages} (RAG_MAX_PAGES); split the file")
    return image


def _frame(image: PilImage, frame: int, name: str, limits: ScanLimits) -> PilImage:
    """The image at one of its frames, checked against the pixel limit: each frame of a TIFF
    has its own size, and the first one's says nothing of the rest."""
    from PIL import Image

    try:
        image.seek(frame)
    except Image.DecompressionBombError as exc:
        raise LoaderError(f"{name}: page {frame + 1} has too many pixels (RAG_MAX_IMAGE_PIXELS)") from exc
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise LoaderError(f"{name}: page {frame + 1} cannot be read ({exc.__class__.__name__})") from exc
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise _too_large(name, width, height, limits)
    return image


def _upright(image: PilImage, frame: int, name: str, limits: ScanLimits, fit: int = 0) -> PilImage:
    """One frame decoded, turned the way the camera's EXIF orientation says, as RGB; ``fit``:
    no larger than that on its long side (a JPEG is then decoded at a reduced scale)."""
    from PIL import Image, ImageOps

    image = _frame(image, frame, name, limits)
    try:
        if fit:
            # Shrunk first, in place (a JPEG is decoded at 1/2, 1/4 or 1/8 scale): turning and
            # converting a full-size page would copy it twice (a 79 MP page is 237 MB a copy).
            image.thumbnail((fit, fit))
        turned = ImageOps.exif_transpose(image)
        return (turned if turned is not None else image).convert("RGB")
    except Image.DecompressionBombError as exc:
        raise LoaderError(f"{name}: page {frame + 1} has too many pixels (RAG_MAX_IMAGE_PIXELS)") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # a truncated or corrupt image body
        raise LoaderError(f"{name}: page {frame + 1} cannot be decoded ({exc.__class__.__name__})") from exc


def image_page_count(data: bytes, name: str, limits: ScanLimits) -> int:
    """How many pages an image file holds, each checked against the limits (not decoded)."""
    image = _open_image(data, name, limits)
    frames = int(getattr(image, "n_frames", 1))
    for frame in range(1, frames):
        _frame(image, frame, name, limits)
    return frames


def _pdf(data: bytes, name: str) -> object:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise LoaderError(f"{name}: cannot read this PDF ({exc}); is it damaged?") from exc


def _scale(width_pt: float, height_pt: float, limits: ScanLimits) -> float:
    """Pixels per PDF point: the DPI asked for, less if the page would pass the pixel limit."""
    scale = limits.dpi / 72
    pixels = width_pt * height_pt * scale * scale
    if pixels > limits.max_image_pixels:
        scale *= (limits.max_image_pixels / pixels) ** 0.5
    return scale


def render_pdf_page(data: bytes, name: str, page: int, limits: ScanLimits) -> PilImage:
    """One PDF page (1-based) rendered at ``limits.dpi`` (or less, within the pixel limit)."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        pdf = _pdf(data, name)
        assert isinstance(pdf, pdfium.PdfDocument)
        try:
            if not 1 <= page <= len(pdf):
                raise LoaderError(f"{name}: has no page {page}")
            sheet = pdf[page - 1]
            width, height = sheet.get_size()
            bitmap = sheet.render(scale=_scale(width, height, limits))
            image: PilImage = bitmap.to_pil().convert("RGB")
            return image
        except pdfium.PdfiumError as exc:
            raise LoaderError(f"{name}: page {page} cannot be rendered ({exc})") from exc
        finally:
            pdf.close()


class OcrCache:
    """Each page's OCR boxes, kept by file content, page and engine until indexed."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _path(self, content_hash: str, page: int, engine: str) -> Path | None:
        if self.folder is None:
            return None
        key = hashlib.sha256(f"{engine}\n{page}".encode()).hexdigest()[:16]
        return self.folder / f"{content_hash[:40]}-{key}.json"

    def get(self, content_hash: str, page: int, engine: str) -> tuple[list[TextBox], int, int] | None:
        path = self._path(content_hash, page, engine)
        if path is None:
            return None
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            boxes = [TextBox(str(t), *(float(v) for v in rest)) for t, *rest in saved["boxes"]]
            return boxes, int(saved["width"]), int(saved["height"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, content_hash: str, page: int, engine: str, found: tuple[list[TextBox], int, int]) -> None:
        path = self._path(content_hash, page, engine)
        if path is None:
            return
        boxes, width, height = found
        rows = [[b.text, b.x0, b.y0, b.x1, b.y1, round(b.score, 4)] for b in boxes]
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"width": width, "height": height, "boxes": rows}, ensure_ascii=False)
        write_atomically(path, body.encode(), prefix=".part-", sync=False)

    def forget(self, content_hashes: set[str]) -> None:
        """Drop the pages of these files (their documents are indexed); the folder goes when empty."""
        if self.folder is None or not self.folder.is_dir():
            return
        for content_hash in content_hashes:
            for path in self.folder.glob(f"{content_hash[:40]}-*.json"):
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.folder.rmdir()


def ocr_lines(
    pages: Iterator[tuple[int, Callable[[], PilImage]]],
    total: int,
    ocr: OcrEngine,
    cache: OcrCache,
    content_hash: str,
    progress: PageProgress | None = None,
) -> list[Line]:
    """The printed lines of scanned pages, in reading order, page after page.

    ``pages`` yields each page's number and a function that renders it, called only when
    the cache does not hold the page."""
    lines: list[Line] = []
    done = 0
    for page, render in pages:
        found = cache.get(content_hash, page, ocr.name)
        if found is None:
            image = render()
            found = (ocr.read(np.asarray(image)), image.width, image.height)
            cache.put(content_hash, page, ocr.name, found)
        boxes, width, height = found
        lines.extend(page_lines(boxes, page, width, height))
        done += 1
        if progress is not None:
            progress(done, total)
    return lines


def image_pages(data: bytes, name: str, limits: ScanLimits) -> Iterator[tuple[int, Callable[[], PilImage]]]:
    """Each page of an image file, decoded when asked for (not when the cache holds it)."""
    image = _open_image(data, name, limits)
    for frame in range(getattr(image, "n_frames", 1)):
        yield frame + 1, lambda frame=frame: _upright(image, frame, name, limits)  # type: ignore[misc]


def pdf_pages(
    data: bytes, name: str, numbers: list[int], limits: ScanLimits
) -> Iterator[tuple[int, Callable[[], PilImage]]]:
    """The given PDF pages, each rendered when asked for."""
    for page in numbers:
        yield page, lambda page=page: render_pdf_page(data, name, page, limits)  # type: ignore[misc]


def indexed_page_image(
    path: str, doc_id: str, content_hash: str, page: int, limits: ScanLimits, progress: object = None
) -> bytes:
    """``page_image`` of the file at ``path``, once checked to be the one indexed (its content
    hash); ``DocumentChanged`` otherwise. Runs in a reading process (rag.ingest.sandbox), so
    that decoding a large page (hundreds of MB) never grows the server."""
    import hashlib

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DocumentChanged(f"{doc_id}: its file is gone ({exc.strerror}); index it again") from exc
    if hashlib.sha256(data).hexdigest() != content_hash:
        raise DocumentChanged(f"{doc_id}: its file changed since it was indexed; index it again")
    return page_image(data, Path(path).name, page, limits)


def page_image(data: bytes, name: str, page: int, limits: ScanLimits, max_side: int = 2000) -> bytes:
    """A scan's page as a JPEG no larger than ``max_side`` on its long side, for display:
    the same page, turned the same way, as OCR read it (so its boxes fit)."""
    if Path(name).suffix.lower() == ".pdf":
        image = render_pdf_page(data, name, page, ScanLimits(limits.max_pages, limits.max_image_pixels, dpi=150))
    else:
        frames = _open_image(data, name, limits)
        if not 1 <= page <= getattr(frames, "n_frames", 1):
            raise LoaderError(f"{name}: has no page {page}")
        image = _upright(frames, page - 1, name, limits, fit=max_side)
    image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()
