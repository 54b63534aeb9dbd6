"""Document management and API keys over the HTTP API, on a copy of the seed index."""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.answer.retrieval import Pipeline
from rag.config import Settings
from rag.errors import LoaderError
from rag.index.embedding import SentenceTransformerEmbedder
from rag.library import safe_filename
from rag.service import open_pipeline

BRIDGE = "# 凤凰新桥\n\n凤凰县今年新建了 3 座跨江大桥，总投资 2.4 亿元。"


@pytest.fixture
def docs_client(
    tmp_path: Path, seed_settings: Settings, seed_pipeline: Pipeline, real_embedder: SentenceTransformerEmbedder
) -> Iterator[tuple[TestClient, Settings]]:
    shutil.copytree(seed_settings.index_dir, tmp_path / "index")
    settings = seed_settings.model_copy(
        update={"index_dir": tmp_path / "index", "documents_dir": tmp_path / "documents", "max_upload_bytes": 4096}
    )
    app = create_app(settings, open_pipeline(settings, real_embedder))
    with TestClient(app, base_url="http://localhost") as client:
        yield client, settings


def test_upload_json_text_then_ask_then_delete(docs_client: tuple[TestClient, Settings]) -> None:
    client, settings = docs_client
    before = {d["doc_id"] for d in client.get("/api/documents").json()["documents"]}
    assert before == {"seeds/hunan-daily-page.txt"}

    created = client.post("/api/documents", json={"name": "bridge.md", "text": BRIDGE})
    assert created.status_code == 201, created.text
    doc_id = created.json()["doc_id"]
    assert doc_id == "documents/bridge.md" and created.json()["chunks"] >= 1
    assert (settings.documents_dir / "bridge.md").read_text(encoding="utf-8") == BRIDGE

    answer = client.post("/api/ask", json={"question": "凤凰县今年新建了几座跨江大桥？"}).json()
    assert "3" in answer["answer"] and answer["citations"][0]["doc_id"] == doc_id
    assert "386" in client.post("/api/ask", json={"question": "凤凰县为多少名农民工追回了拖欠工资？"}).json()["answer"]

    assert client.delete(f"/api/documents/{doc_id}").status_code == 204
    assert not (settings.documents_dir / "bridge.md").exists()
    assert {d["doc_id"] for d in client.get("/api/documents").json()["documents"]} == before
    assert client.delete(f"/api/documents/{doc_id}").status_code == 404


def test_multipart_upload(docs_client: tuple[TestClient, Settings]) -> None:
    client, _ = docs_client
    files = {"file": ("notes.txt", "资兴市新建了 5 个研学基地。".encode(), "text/plain")}
    response = client.post("/api/documents", files=files)
    assert response.status_code == 201 and response.json()["doc_id"] == "documents/notes.txt"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"files": {"file": ("sheet.xlsx", b"PK\x03\x04", "application/octet-stream")}}, 415, "unsupported_file_type"),
        ({"files": {"file": ("big.txt", "字".encode() * 3000, "text/plain")}}, 413, "upload_too_large"),
        ({"json": {"name": "empty.txt", "text": "   "}}, 422, "unreadable_document"),
        ({"json": {"name": "x.txt"}}, 422, "invalid_request"),
        ({"content": b"{broken", "headers": {"content-type": "application/json"}}, 422, "invalid_request"),
    ],
)
def test_bad_uploads_change_nothing(
    docs_client: tuple[TestClient, Settings], kwargs: dict[str, object], status: int, code: str
) -> None:
    client, settings = docs_client
    response = client.post("/api/documents", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert len(client.get("/api/documents").json()["documents"]) == 1
    assert not settings.documents_dir.exists() or not any(settings.documents_dir.iterdir())


def test_file_names_cannot_escape_the_documents_folder() -> None:
    assert safe_filename("../../etc/passwd.txt") == "passwd.txt"
    assert safe_filename("..\\\\windows\\\\evil.md") == "evil.md"
    assert safe_filename("凤凰 新闻.txt") == "凤凰 新闻.txt"
    with pytest.raises(LoaderError):
        safe_filename("../..")


def test_api_keys_guard_everything_but_health_and_the_page(seed_settings: Settings, seed_pipeline: Pipeline) -> None:
    settings = seed_settings.model_copy(update={"api_keys": "k1, k2"})
    with TestClient(create_app(settings, seed_pipeline), base_url="http://localhost") as client:
        assert client.get("/api/health").status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and '<script src="/static/app.js"' in page.text
        assert client.get("/static/app.js").status_code == 200
        assert client.get("/static/%2e%2e/routers/page.py").status_code == 404
        denied = client.post("/api/ask", json={"question": "凤凰县为多少名农民工追回了拖欠工资？"})
        assert denied.status_code == 401 and denied.json()["error"] == "unauthorized"
        wrong = client.get("/api/documents", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.post(
            "/api/ask",
            json={"question": "凤凰县为多少名农民工追回了拖欠工资？"},
            headers={"Authorization": "Bearer k2"},
        )
        assert ok.status_code == 200 and "386" in ok.json()["answer"]


def test_a_publication_day_is_kept_and_shown_with_the_citation(docs_client: tuple[TestClient, Settings]) -> None:
    client, _ = docs_client
    created = client.post("/api/documents", json={"name": "bridge.md", "text": BRIDGE, "published": "2024-05-01"})
    assert created.status_code == 201 and created.json()["published"] == "2024-05-01"
    answer = client.post("/api/ask", json={"question": "凤凰县今年新建了几座跨江大桥？"}).json()
    assert answer["citations"][0]["doc_id"] == "documents/bridge.md"
    assert answer["citations"][0]["published"] == "2024-05-01"
    # From the file name, when the upload does not say.
    files = {"file": ("2023-09-30-notes.txt", "资兴市新建了 5 个研学基地。".encode(), "text/plain")}
    assert client.post("/api/documents", files=files).json()["published"] == "2023-09-30"
    bad = client.post("/api/documents", json={"name": "x.md", "text": BRIDGE, "published": "May 1st"})
    assert bad.status_code == 422


def test_index_status_reports_an_upload_while_it_is_indexed(
    docs_client: tuple[TestClient, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import rag.library
    from rag.index.embedding import InterruptibleEmbedder

    class _Slow(InterruptibleEmbedder):
        """The upload's embedder, a second slower per passage batch: time to watch the upload."""

        def embed_passages(self, texts: list[str], spans: list[list[tuple[int, int]]]):  # type: ignore[no-untyped-def]
            time.sleep(1.0)
            return super().embed_passages(texts, spans)

    client, _ = docs_client
    idle = client.get("/api/index/status").json()
    assert idle["busy"] is False and idle["queued"] == 0
    monkeypatch.setattr(rag.library, "InterruptibleEmbedder", _Slow)
    answers: list[int] = []
    upload = threading.Thread(
        target=lambda: answers.append(client.post("/api/documents", json={"name": "b.md", "text": BRIDGE}).status_code)
    )
    upload.start()
    seen = []
    while upload.is_alive():
        seen.append(client.get("/api/index/status").json())
        time.sleep(0.05)
    upload.join()
    assert answers == [201]
    busy = [s for s in seen if s["busy"]]
    assert busy and all(s["document"] == "b.md" and s["queued"] == 1 for s in busy)
    assert "embedding chunks" in {s["stage"] for s in busy}  # the later stages may pass between two polls
    embedding = [s for s in busy if s["stage"] == "embedding chunks"]
    assert all(0 <= s["done"] <= s["total"] and s["total"] >= 1 for s in embedding)
    after = client.get("/api/index/status").json()
    assert after["busy"] is False and after["document"] == "b.md"


def test_questions_can_be_limited_to_documents_and_publication_days(docs_client: tuple[TestClient, Settings]) -> None:
    client, _ = docs_client
    created = client.post("/api/documents", json={"name": "bridge.md", "text": BRIDGE, "published": "2031-05-01"})
    bridge = created.json()["doc_id"]
    seed = "seeds/hunan-daily-page.txt"
    wages = "凤凰县为多少名农民工追回了拖欠工资？"

    def ask(**limits: object) -> dict[str, Any]:
        response = client.post("/api/ask", json={"question": wages, **limits})
        assert response.status_code == 200, response.text
        return dict(response.json())

    assert "386" in ask()["answer"]
    assert "386" in ask(documents=[seed])["answer"]
    only_bridge = ask(documents=[bridge])
    assert only_bridge["abstained"] and all(c["doc_id"] == bridge for c in only_bridge["citations"])
    since = ask(published_from="2031-01-01")  # only the bridge article is that recent
    assert since["abstained"] and all(c["doc_id"] == bridge for c in since["citations"])
    bridges = client.post("/api/ask", json={"question": "凤凰县今年新建了几座跨江大桥？", "published_to": "2031-05-01"})
    assert "3" in bridges.json()["answer"] and bridges.json()["citations"][0]["doc_id"] == bridge
    for limits, problem in (
        ({"documents": ["nothing.txt"]}, "GET /api/documents"),
        ({"published_from": "2031-02-01", "published_to": "2031-01-01"}, "after"),
    ):
        refused = client.post("/api/ask", json={"question": wages, **limits})
        assert refused.status_code == 422 and problem in refused.json()["message"]


def test_names_and_ids_that_read_otherwise_than_they_are_are_refused(docs_client: tuple[TestClient, Settings]) -> None:
    """A right-to-left override or a zero-width character in a file name is refused; the NFD
    spelling of an existing name is that name (409), not a look-alike second document; a
    control character in a search filter's id is a 422, not a store error."""
    client, _ = docs_client
    text = "凤凰县为386名农民工追回了拖欠工资。"
    for name in ("report\u202etxt.exe.txt", "re\u200bport.txt", "report\u2066.txt", "a\x85b.txt"):
        refused = client.post("/api/documents", json={"name": name, "text": text})
        assert refused.status_code == 422 and "bidirectional or zero-width" in refused.json()["message"], name
    composed = "Café.txt"
    assert client.post("/api/documents", json={"name": composed, "text": text}).status_code == 201
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    twin = client.post("/api/documents", json={"name": decomposed, "text": text})
    assert twin.status_code == 409, twin.text
    asked = client.post("/api/ask", json={"question": text, "documents": ["documents/a\x00b.txt"]})
    assert asked.status_code == 422 and "is not a document id" in asked.json()["message"]
    # An error names the file, not the folder the server keeps it in.
    broken = client.post("/api/documents", files={"file": ("broken.pdf", b"%PDF-1.4 not really", "application/pdf")})
    message = broken.json()["message"]
    assert broken.status_code == 422 and message.startswith("broken.pdf: ") and "/" not in message, message


def test_an_upload_over_the_limit_without_a_length_is_413(docs_client: tuple[TestClient, Settings]) -> None:
    """A chunked multipart upload past RAG_MAX_UPLOAD_BYTES got 400; it is 413 like a sized one."""
    client, settings = docs_client
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(settings.max_upload_bytes // 1000 + 10):
            yield "凤凰县".encode() * 111
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = client.post("/api/documents", content=chunks(), headers=headers)
    assert response.status_code == 413, response.text
    assert "RAG_MAX_UPLOAD_BYTES" in response.json()["message"]
