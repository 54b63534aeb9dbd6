"""Scans over the HTTP API: an uploaded page is read by OCR, answered from, and shown with
the evidence's box; bad scans are refused before they queue."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from rag.config import Settings

# One page is a small corpus: the English question does not stand out from it enough for the
# gate (the whole scan answers it: tests/test_scans.py, the browser test); the Chinese one does.
QUESTION = "凤凰县为多少名农民工追回了拖欠工资？"


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def scan_client(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, real_embedder: Any, seed_scan: Any
) -> Iterator[tuple[TestClient, Settings]]:
    """A server with no index yet, to which the scan's fourth page (the Fenghuang story) is uploaded."""
    root = tmp_path_factory.mktemp("scan-api")
    settings = Settings(
        index_dir=root / "index", documents_dir=root / "documents", cache_dir=model_cache, generator="extractive"
    )
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        files = {"file": ("page4.png", _png(seed_scan.pages[3]), "image/png")}
        created = client.post("/api/documents", files=files)
        assert created.status_code == 201, created.text
        assert created.json()["pages"] == 1 and created.json()["chunks"] >= 1
        yield client, settings


def test_an_uploaded_scan_answers_with_its_page_and_box(
    scan_client: tuple[TestClient, Settings], seed_scan: Any
) -> None:
    client, _ = scan_client
    answer = client.post("/api/ask", json={"question": QUESTION}).json()
    assert "386" in answer["answer"] and not answer["abstained"]
    citation = answer["citations"][0]
    assert citation["doc_id"] == "documents/page4.png" and citation["page"] == 1
    evidence = [
        r
        for r in citation["regions"]
        if r["start"] < citation["evidence_end"] and r["end"] > citation["evidence_start"]
    ]
    line = next(line for line in seed_scan.lines if "386名" in "".join(line.text.split()))
    width, height = seed_scan.pages[3].size
    x0, y0, x1, y1 = line.box
    printed = (x0 / width, y0 / height, x1 / width, y1 / height)
    assert any(max(abs(a - b) for a, b in zip(r["box"], printed, strict=True)) < 0.01 for r in evidence), evidence
    listed = client.get("/api/documents").json()["documents"]
    assert [d["pages"] for d in listed] == [1]


def test_the_page_image_is_served_and_checked_against_the_file(
    scan_client: tuple[TestClient, Settings], seed_scan: Any
) -> None:
    client, settings = scan_client
    shown = client.get("/api/documents/documents/page4.png/pages/1")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert shown.headers["etag"] and "max-age" in shown.headers["cache-control"]
    image = Image.open(io.BytesIO(shown.content))
    width, height = seed_scan.pages[3].size
    assert max(image.size) == 2000 and abs(image.size[0] / image.size[1] - width / height) < 0.01
    assert client.get("/api/documents/documents/page4.png/pages/2").status_code == 404
    assert client.get("/api/documents/documents/nope.png/pages/1").status_code == 404
    # A client that has the page is told so; page numbers are plain digits.
    again = client.get("/api/documents/documents/page4.png/pages/1", headers={"If-None-Match": shown.headers["etag"]})
    assert again.status_code == 304 and not again.content and again.headers["etag"] == shown.headers["etag"]
    for odd in ("1.0", "+1", "01", "0", "１"):
        assert client.get(f"/api/documents/documents/page4.png/pages/{odd}").status_code == 422, odd
    stored = settings.documents_dir / "page4.png"
    original = stored.read_bytes()
    try:
        stored.write_bytes(_png(seed_scan.pages[2]))
        changed = client.get("/api/documents/documents/page4.png/pages/1")
        assert changed.status_code == 409 and "index it again" in changed.json()["message"]
    finally:
        stored.write_bytes(original)


def test_bad_scans_are_refused_with_a_clear_message(scan_client: tuple[TestClient, Settings]) -> None:
    client, _ = scan_client
    broken = client.post("/api/documents", files={"file": ("broken.jpg", b"\xff\xd8\xff\xe0 not a jpeg", "image/jpeg")})
    assert broken.status_code == 422 and "cannot read this image" in broken.json()["message"]
    old = client.post("/api/documents", files={"file": ("old.docx", b"\xd0\xcf\x11\xe0 binary", "application/msword")})
    assert old.status_code == 422 and "not a Word .docx file" in old.json()["message"]
    assert [d["doc_id"] for d in client.get("/api/documents").json()["documents"]] == ["documents/page4.png"]


def test_with_ocr_off_a_scan_is_refused(scan_client: tuple[TestClient, Settings], seed_scan: Any) -> None:
    from rag.service import read_options

    client, settings = scan_client
    state = client.app_state["app"]
    reading, state.library.reading = state.library.reading, read_options(settings.model_copy(update={"ocr": "off"}))
    try:
        refused = client.post("/api/documents", files={"file": ("page.png", _png(seed_scan.pages[3]), "image/png")})
    finally:
        state.library.reading = reading
    assert refused.status_code == 422 and "RAG_OCR=rapidocr" in refused.json()["message"]
    assert [d["doc_id"] for d in client.get("/api/documents").json()["documents"]] == ["documents/page4.png"]
