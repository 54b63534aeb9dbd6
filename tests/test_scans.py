"""Scans: images and image-only PDFs read by OCR, their limits and errors, and the generated
seed scan indexed and asked the Fenghuang question with the real OCR engine and model."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rag.config import Settings
from rag.errors import LoaderError
from rag.ingest.loaders import ReadOptions, load_paths, pages_to_read, parse_bytes
from rag.ingest.ocr import DETECT_SIDE, TYPE_PIXELS, OcrEngine, RapidOcrEngine, detection_side
from rag.ingest.scans import ScanLimits, page_image
from rag.types import TextBox
from tests.fakes import ScriptedOcr

FENGHUANG = "为386名农民工追回"


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _printed_box(scan: Any, needle: str) -> tuple[int, tuple[float, float, float, float]]:
    """The page and box (fractions of the page) of the printed line holding ``needle``."""
    line = next(line for line in scan.lines if needle in _squeeze(line.text))
    width, height = scan.pages[line.page - 1].size
    x0, y0, x1, y1 = line.box
    return line.page, (x0 / width, y0 / height, x1 / width, y1 / height)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _png(image: Image.Image, **info: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **info)
    return out.getvalue()


# --- the OCR engine contract: what the layout relies on, for the real engine and the fake ---


@pytest.fixture(params=["scripted", "rapidocr"])
def engine(request: pytest.FixtureRequest, seed_scan: Any) -> OcrEngine:
    if request.param == "scripted":
        return ScriptedOcr(seed_scan)
    engine: OcrEngine = request.getfixturevalue("real_ocr")
    return engine


def test_an_engine_reads_the_lines_of_a_page_with_their_boxes(engine: OcrEngine, seed_scan: Any) -> None:
    page, printed = _printed_box(seed_scan, FENGHUANG)
    image = np.asarray(seed_scan.pages[page - 1].convert("RGB"))
    boxes = engine.read(image)
    height, width = image.shape[:2]
    assert boxes and all(b.text.strip() for b in boxes)
    assert all(0 <= b.x0 < b.x1 <= width + 1 and 0 <= b.y0 < b.y1 <= height + 1 for b in boxes)
    found = next(b for b in boxes if FENGHUANG in _squeeze(b.text))
    assert _overlap((found.x0 / width, found.y0 / height, found.x1 / width, found.y1 / height), printed) > 0.5
    assert abs(found.angle) < 0.02  # the page is turned 0.25 degrees
    assert engine.name  # kept with cached pages, so another engine reads them again


def test_detection_runs_larger_only_where_the_type_would_be_too_small_to_find() -> None:
    def lines(size: float) -> list[TextBox]:  # nine lines of eleven characters of this size
        text = "株洲市生态环境持续好转"
        return [TextBox(text, 100, 100 + 60 * n, 100 + len(text) * size, 130 + 60 * n) for n in range(9)]

    assert detection_side(lines(30), 2480, 3508) == DETECT_SIDE  # A4 at 300 dpi: 17 px type there
    assert detection_side(lines(12), 1600, 1200) == DETECT_SIDE  # already detected at full size
    assert detection_side([], 4134, 5906) == DETECT_SIDE  # nothing found: nothing to size by
    side = detection_side(lines(30), 4134, 5906)  # a broadsheet: 10 px type at 2,000
    assert DETECT_SIDE < side < 5906 and 30 * side / 5906 == pytest.approx(TYPE_PIXELS, abs=0.1)
    assert detection_side(lines(8), 4134, 5906) == 5906  # never beyond full size


# --- reading scans (the scripted engine: fast, and exact about what is on each page) ---


def test_an_image_only_pdf_is_read_page_by_page_in_reading_order(seed_scan: Any, seed_scan_pdf: bytes) -> None:
    ocr = ScriptedOcr(seed_scan)
    progress: list[tuple[int, int]] = []
    doc = parse_bytes(
        seed_scan_pdf, "scan.pdf", "scan.pdf", options=ReadOptions(ocr=ocr), progress=lambda *p: progress.append(p)
    )
    assert doc.pages == 4 and ocr.calls == 4
    assert progress[-1] == (4, 4)
    assert _squeeze(doc.text) == _squeeze(seed_scan.text())
    assert doc.articles[4].title == "凤凰纪委为农民工解“薪”愁"
    # every printed line is located: its text in the document, its box on its page
    assert len(doc.regions) == len(seed_scan.lines)
    at = _squeeze(doc.text).index(FENGHUANG)
    region = next(r for r in doc.regions if FENGHUANG in _squeeze(doc.text[r.start : r.end]))
    page, printed = _printed_box(seed_scan, FENGHUANG)
    assert region.page == page and _overlap(region.box, printed) > 0.8 and at > 0


def test_chunks_and_citations_keep_the_lines_they_hold(seed_scan: Any, seed_scan_pdf: bytes) -> None:
    from rag.ingest.chunking import chunk_document

    doc = parse_bytes(seed_scan_pdf, "scan.pdf", "scan.pdf", options=ReadOptions(ocr=ScriptedOcr(seed_scan)))
    chunks = chunk_document(doc, 300, 60)
    assert all(c.regions for c in chunks)
    for chunk in chunks:
        for region in chunk.regions:
            assert region.start < chunk.end and region.end > chunk.start
    wages = next(c for c in chunks if "386" in c.text)
    assert wages.page == 4


def test_a_multi_page_tiff_is_read_page_by_page(seed_scan: Any) -> None:
    # Copies: Pillow hands an appended page the settings of its last save (a PNG elsewhere in
    # the session), which its TIFF encoder then refuses.
    first, second = seed_scan.pages[2].copy(), seed_scan.pages[3].copy()
    out = io.BytesIO()
    first.save(out, "TIFF", save_all=True, append_images=[second], compression="tiff_deflate")
    doc = parse_bytes(out.getvalue(), "pages.tif", "pages.tif", options=ReadOptions(ocr=ScriptedOcr(seed_scan)))
    assert doc.pages == 2 and "386" in doc.text and {r.page for r in doc.regions} == {1, 2}


def test_a_photo_turned_by_exif_is_read_upright(seed_scan: Any) -> None:
    # A phone photo stored sideways, with the EXIF tag that says to turn it back.
    page = seed_scan.pages[3].convert("RGB").rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to view
    out = io.BytesIO()
    page.save(out, "JPEG", exif=exif, quality=90)
    shapes: list[tuple[int, ...]] = []

    class Watched(ScriptedOcr):
        def read(self, image: Any) -> list[TextBox]:
            shapes.append(image.shape[:2])
            return super().read(image)

    doc = parse_bytes(out.getvalue(), "photo.jpg", "photo.jpg", options=ReadOptions(ocr=Watched(seed_scan)))
    assert shapes == [(seed_scan.pages[3].height, seed_scan.pages[3].width)]  # OCR saw it upright
    assert FENGHUANG in _squeeze(doc.text)


def test_a_scan_the_index_holds_is_not_read_again(tmp_path: Path, seed_scan: Any, hash_embedder: Any) -> None:
    from rag.library import index_paths

    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "page4.png").write_bytes(_png(seed_scan.pages[3]))
    settings = Settings(index_dir=tmp_path / "index", embedding_model="hash-64", generator="extractive")
    ocr = ScriptedOcr(seed_scan)
    options = ReadOptions(ocr=ocr, ocr_cache=tmp_path / "ocr")
    first = index_paths(settings, [folder], hash_embedder, options=options)
    assert first.stats.added == ("scans/page4.png",) and ocr.calls == 1
    second = index_paths(settings, [folder], hash_embedder, options=options)
    assert second.stats.unchanged == ("scans/page4.png",) and ocr.calls == 1  # not OCR'd again


def test_an_interrupted_read_resumes_from_the_pages_it_had_read(
    tmp_path: Path, seed_scan: Any, seed_scan_pdf: bytes
) -> None:
    cache = tmp_path / "ocr"
    stopping = ScriptedOcr(seed_scan, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        parse_bytes(seed_scan_pdf, "scan.pdf", "scan.pdf", options=ReadOptions(ocr=stopping, ocr_cache=cache))
    again = ScriptedOcr(seed_scan)
    doc = parse_bytes(seed_scan_pdf, "scan.pdf", "scan.pdf", options=ReadOptions(ocr=again, ocr_cache=cache))
    assert again.calls == 2 and doc.pages == 4  # pages 1 and 2 came from the cache
    assert _squeeze(doc.text) == _squeeze(seed_scan.text())


def test_a_pdf_with_text_pages_and_scanned_pages_reads_both_in_order(seed_scan: Any) -> None:
    from pypdf import PdfReader, PdfWriter

    from tests.test_loaders import _pdf_bytes

    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(_pdf_bytes("Page one has a text layer about Zhuzhou air quality."))).pages[0])
    out = io.BytesIO()
    seed_scan.pages[3].convert("RGB").save(out, "PDF", resolution=300)
    writer.add_page(PdfReader(io.BytesIO(out.getvalue())).pages[0])
    mixed = io.BytesIO()
    writer.write(mixed)
    ocr = ScriptedOcr(seed_scan)
    assert pages_to_read(mixed.getvalue(), "mixed.pdf", ReadOptions(ocr=ocr)) == 1
    doc = parse_bytes(mixed.getvalue(), "mixed.pdf", "mixed.pdf", options=ReadOptions(ocr=ocr))
    assert ocr.calls == 1 and doc.pages == 2
    assert doc.text.index("Zhuzhou air quality") < doc.text.index("386")
    assert {r.page for r in doc.regions} == {2}
    assert all(doc.text[r.start : r.end].strip() for r in doc.regions)


# --- bad files and limits: a clear error, never a traceback ---


def test_broken_and_oversized_scans_are_clear_errors(seed_scan: Any, seed_scan_pdf: bytes) -> None:
    ocr = ScriptedOcr(seed_scan)
    page = _png(seed_scan.pages[3])
    cases = [
        (b"\x89PNG\r\n\x1a\nnot really", "a.png", ReadOptions(ocr=ocr), "cannot read this image"),
        (page[: len(page) // 2], "cut.png", ReadOptions(ocr=ocr), "cannot be decoded"),
        (page, "big.png", ReadOptions(ocr=ocr, limits=ScanLimits(max_image_pixels=1_000_000)), "RAG_MAX_IMAGE_PIXELS"),
        (seed_scan_pdf, "long.pdf", ReadOptions(ocr=ocr, limits=ScanLimits(max_pages=3)), "RAG_MAX_PAGES"),
        (seed_scan_pdf, "scan.pdf", ReadOptions(ocr=None), "RAG_OCR=rapidocr"),
        (page, "page.png", ReadOptions(ocr=None), "RAG_OCR=rapidocr"),
    ]
    for data, name, options, message in cases:
        with pytest.raises(LoaderError, match=message):
            parse_bytes(data, name, name, options=options)
    blank = _png(Image.new("RGB", (800, 1000), "white"))
    with pytest.raises(LoaderError, match="OCR found no text"):
        parse_bytes(blank, "blank.png", "blank.png", options=ReadOptions(ocr=ocr_that_reads_nothing()))


def ocr_that_reads_nothing() -> OcrEngine:
    class Nothing:
        name = "nothing"

        def read(self, image: Any) -> list[TextBox]:
            return []

    return Nothing()


def test_rag_index_reports_a_bad_scan_and_indexes_the_rest(tmp_path: Path, seed_scan: Any) -> None:
    good = _png(seed_scan.pages[3])
    (tmp_path / "good.png").write_bytes(good)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    (tmp_path / "huge.txt").write_bytes(b"x" * (len(good) + 1))
    report = load_paths([tmp_path], ReadOptions(ocr=ScriptedOcr(seed_scan), max_file_bytes=len(good)))
    assert [d.doc_id.rsplit("/", 1)[-1] for d in report.documents] == ["good.png"]
    failed = {Path(p).name: why for p, why in report.failed}
    assert "cannot read this image" in failed["bad.jpg"] and "RAG_MAX_FILE_BYTES" in failed["huge.txt"]


def test_a_page_is_shown_as_ocr_read_it(seed_scan: Any, seed_scan_pdf: bytes) -> None:
    shown = Image.open(io.BytesIO(page_image(seed_scan_pdf, "scan.pdf", 4, ScanLimits())))
    assert shown.format == "JPEG" and max(shown.size) <= 2000
    width, height = seed_scan.pages[3].size
    assert abs(shown.size[0] / shown.size[1] - width / height) < 0.01  # boxes in fractions still fit
    with pytest.raises(LoaderError, match="no page 5"):
        page_image(seed_scan_pdf, "scan.pdf", 5, ScanLimits())


# --- the real engine end to end: the generated scan, indexed and asked ---


@pytest.fixture(scope="module")
def scan_index(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path,
    real_embedder: Any,
    seed_scan_pdf: bytes,
    real_ocr: RapidOcrEngine,
) -> Settings:
    """The generated seed scan (four image-only pages) indexed with the real OCR engine."""
    from rag.library import index_paths

    root = tmp_path_factory.mktemp("scan-index")
    (root / "scans").mkdir()
    (root / "scans" / "hunan-daily-scan.pdf").write_bytes(seed_scan_pdf)
    settings = Settings(index_dir=root / "index", cache_dir=model_cache, generator="extractive")
    result = index_paths(settings, [root / "scans"], real_embedder, options=ReadOptions(ocr=real_ocr))
    assert result.stats.added == ("scans/hunan-daily-scan.pdf",) and not result.failed
    return settings


def test_the_ocr_text_matches_what_was_printed(scan_index: Settings, seed_scan: Any) -> None:
    from rapidfuzz.distance import Levenshtein

    from rag.index.snapshot import load_snapshot

    doc = load_snapshot(scan_index.index_dir).documents["scans/hunan-daily-scan.pdf"]
    printed, read = _squeeze(seed_scan.text()), _squeeze(doc.text)
    accuracy = 1 - Levenshtein.distance(printed, read) / len(printed)
    assert accuracy >= 0.97, accuracy  # eval.bench_ocr reports the figure; 0.996 when measured
    assert [a.title for a in doc.articles][-2:] == ["凤凰纪委为农民工解“薪”愁", "株洲生态环境持续好转"]


def test_the_fenghuang_question_is_answered_from_the_scan_with_its_box(
    scan_index: Settings, real_embedder: Any, seed_scan: Any
) -> None:
    from rag.answer.generators import Generators
    from rag.answer.stream import Answerer, Query
    from rag.service import open_pipeline

    answerer = Answerer(open_pipeline(scan_index, real_embedder), Generators(scan_index), scan_index)
    answer = answerer.open(Query("How many workers did Fenghuang recover wages for?")).answer()
    assert not answer.abstained and "386" in answer.text
    citation = answer.citations[0]
    assert citation.doc_id == "scans/hunan-daily-scan.pdf" and citation.title == "凤凰纪委为农民工解“薪”愁"
    page, printed = _printed_box(seed_scan, FENGHUANG)
    assert citation.page == page
    assert any(r.page == page and _overlap(r.box, printed) > 0.5 for r in citation.evidence_regions)
