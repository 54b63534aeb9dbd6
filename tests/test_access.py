"""Who may do what: without keys a web page cannot change the documents, a network is not
served without keys, read keys ask and write keys upload, a client cannot load a generator
the server does not offer; and the headers every page carries. Against a real ``rag serve``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from rag.answer.retrieval import Pipeline
from rag.config import Settings
from tests.conftest import JSON, QUESTION, running_server, server_env


def test_without_keys_a_web_page_cannot_change_the_documents(base: str) -> None:
    planted = json.dumps({"name": "planted.txt", "text": "凤凰县为999999名农民工追回了拖欠工资。"})
    evil = {"Origin": "http://evil.example"}
    as_text = httpx.post(f"{base}/api/documents", content=planted, headers={"Content-Type": "text/plain"})
    assert as_text.status_code == 415
    cross = httpx.post(f"{base}/api/documents", content=planted, headers={**JSON, **evil})
    assert cross.status_code == 403 and cross.json()["error"] == "cross_origin"
    files = {"file": ("planted.txt", "凤凰县为999999名农民工追回了拖欠工资。".encode(), "text/plain")}
    assert httpx.post(f"{base}/api/documents", files=files, headers=evil).status_code == 403
    rebound = httpx.get(f"{base}/api/health", headers={"Host": "evil.example"})
    assert rebound.status_code == 421
    answer = httpx.post(f"{base}/api/ask", json={"question": QUESTION}, timeout=30).json()
    assert "386" in answer["answer"] and "999999" not in answer["answer"]
    # The page itself (same origin) may still upload.
    own = base.removeprefix("http://")
    same = httpx.post(
        f"{base}/api/documents", json={"name": "same-origin.txt", "text": "资兴市新建了 5 个研学基地。"},
        headers={"Origin": f"http://{own}"}, timeout=60,
    )  # fmt: skip
    assert same.status_code == 201, same.text
    assert httpx.delete(f"{base}/api/documents/{same.json()['doc_id']}", timeout=60).status_code == 204


def test_serving_a_network_without_keys_is_refused(tmp_path: Path) -> None:
    rag = str(Path(sys.executable).parent / "rag")
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "none")}
    done = subprocess.run([rag, "serve", "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "RAG_API_KEYS" in done.stderr and "Traceback" not in done.stderr


def test_read_keys_ask_and_write_keys_also_upload(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    env = server_env(seed_settings, tmp_path, RAG_API_KEYS="writer", RAG_READ_API_KEYS="reader")
    with running_server(env, tmp_path / "server.log") as url:
        reader, writer = {"Authorization": "Bearer reader"}, {"Authorization": "Bearer writer"}
        brief = httpx.get(f"{url}/api/health").json()
        assert brief == {"status": "ok", "ready": True}  # no counts, models or paths without a key
        assert "documents" in httpx.get(f"{url}/api/health", headers=reader).json()
        assert httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=30).status_code == 401
        assert httpx.post(f"{url}/api/ask", json={"question": QUESTION}, headers=reader, timeout=30).status_code == 200
        doc = {"name": "keyed.txt", "text": "资兴市新建了 5 个研学基地。"}
        denied = httpx.post(f"{url}/api/documents", json=doc, headers=reader)
        assert denied.status_code == 403 and denied.json()["error"] == "read_only_key"
        assert httpx.post(f"{url}/api/documents", json=doc, headers=writer, timeout=60).status_code == 201
        # With keys, any Host is served (a proxy's name, say).
        assert httpx.get(f"{url}/api/health", headers={"Host": "rag.example.org"}).status_code == 200


def test_a_client_cannot_load_a_generator_the_server_does_not_offer(base: str) -> None:
    response = httpx.post(f"{base}/api/ask", json={"question": QUESTION, "generator": "llama-cpp"}, timeout=30)
    assert response.status_code == 422 and "RAG_OFFERED_GENERATORS" in response.json()["message"]
    assert [m["id"] for m in httpx.get(f"{base}/v1/models").json()["data"]] == ["extractive"]


def test_small_ones(base: str, tmp_path: Path) -> None:
    assert httpx.head(f"{base}/api/health").status_code == 200
    top_k = httpx.post(f"{base}/api/ask", json={"question": QUESTION, "top_k": True}, timeout=30)
    assert top_k.status_code == 422
    page = httpx.get(f"{base}/")
    for header in ("content-security-policy", "x-content-type-options", "x-frame-options"):
        assert header in page.headers
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    docs = httpx.get(f"{base}/docs")
    assert docs.status_code == 200 and "https://" not in docs.text and "http://" not in docs.text
    assert httpx.get(f"{base}/static/docs/swagger-ui-bundle.js").status_code == 200
    listed = httpx.get(f"{base}/api/documents").json()["documents"]
    assert listed and all(d["chunks"] > 0 for d in listed)
