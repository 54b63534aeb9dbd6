from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import LoaderError, UnsupportedFileType
from rag.ingest.loaders import SUPPORTED_SUFFIXES, load_paths, parse_bytes


def _pdf_bytes(text: str) -> bytes:
    """A one-page PDF with the given ASCII text, written by hand (no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def _text(data: bytes, name: str) -> str:
    return parse_bytes(data, name, name).text


def test_each_text_type_loads() -> None:
    assert "株洲" in _text("株洲的天空。".encode(), "a.txt")
    assert _text(b"# Heading\n\nBody.", "a.md") == "Heading\nBody."  # the marks are markup, not text
    html = "<html><head><title>标题</title><script>x=1</script></head><body><p>正文内容。</p></body></html>"
    raw = _text(html.encode(), "a.html")
    assert "标题" in raw and "正文内容。" in raw and "x=1" not in raw
    assert "Fenghuang recovered wages" in _text(_pdf_bytes("Fenghuang recovered wages"), "a.pdf")


def test_gb18030_text_is_decoded() -> None:
    assert _text("凤凰县".encode("gb18030"), "old.txt") == "凤凰县"


def test_unsupported_type_names_the_supported_ones() -> None:
    with pytest.raises(UnsupportedFileType) as info:
        parse_bytes(b"PK\x03\x04", "sheet.xlsx", "sheet.xlsx")
    message = str(info.value)
    assert "sheet.xlsx" in message
    assert all(suffix in message for suffix in SUPPORTED_SUFFIXES)


def test_broken_pdf_is_a_clear_error() -> None:
    with pytest.raises(LoaderError, match="PDF"):
        parse_bytes(b"%PDF-1.4 this is not really a pdf", "broken.pdf", "broken.pdf")


def test_folder_with_one_bad_file_indexes_the_rest(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("凤凰县为 386 名农民工追回拖欠工资。", encoding="utf-8")
    (tmp_path / "notes.md").write_text("# Notes\n\nSome English notes.", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    report = load_paths([tmp_path])
    assert sorted(d.doc_id.split("/")[-1] for d in report.documents) == ["good.txt", "notes.md"]
    failed = dict(report.failed)
    assert set(Path(p).name for p in failed) == {"image.png", "empty.txt", "sheet.xlsx"}
    assert "cannot read this image" in failed[str(tmp_path / "image.png")]
    assert "unsupported" in failed[str(tmp_path / "sheet.xlsx")]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="no such file"):
        load_paths([tmp_path / "nope"])


def test_document_ids_are_stable_and_hash_tracks_content(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("第一版。", encoding="utf-8")
    first = load_paths([folder]).documents[0]
    (folder / "a.txt").write_text("第二版。", encoding="utf-8")
    second = load_paths([folder]).documents[0]
    assert first.doc_id == second.doc_id == "docs/a.txt"
    assert first.content_hash != second.content_hash


def test_parse_bytes_keeps_articles_inside_the_text() -> None:
    doc = parse_bytes("标题\n\n正文第一段。\n\n正文第二段。".encode(), "x/a.txt", "a.txt")
    assert doc.articles and all(0 <= a.start < a.end <= len(doc.text) for a in doc.articles)
