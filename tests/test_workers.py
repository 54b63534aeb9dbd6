"""Several ``rag serve --workers`` processes behave as one service (issue 29): a client that
uploads a document finds it in its very next question and in the document list, whichever
process answers, without waiting for the index poll; an upload's progress is reported by every
process, not only the one indexing it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from api.process import server_process
from rag.config import Settings
from tests.conftest import server_env
from tests.test_observability import _metric

NOTE = {"name": "bridges.md", "text": "临澧县今年新建了 47 座农村公路桥梁，总投资 1.2 亿元。"}


def test_a_client_reads_its_own_upload_from_every_worker(
    seed_settings: Settings, seed_pipeline: object, tmp_path: Path
) -> None:
    # A poll that never comes during the test: only read-your-writes can show the upload.
    env = server_env(seed_settings, tmp_path, RAG_INDEX_POLL_S="600")
    with server_process(env, tmp_path / "server.log", args=("--workers", "2")) as (base, _):
        with ThreadPoolExecutor(16) as pool:
            pids: set[float] = set()
            deadline = time.monotonic() + 30
            while len(pids) < 2 and time.monotonic() < deadline:
                pages = pool.map(lambda _: httpx.get(f"{base}/metrics", timeout=10).text, range(32))
                pids.update(_metric(page, "rag_worker_pid") for page in pages)
            assert len(pids) == 2, "both workers answer"

            created = httpx.post(f"{base}/api/documents", json=NOTE, timeout=120)
            assert created.status_code == 201, created.text

            def ask(_: int) -> tuple[float, str, list[str]]:
                with httpx.Client(base_url=base, timeout=60) as fresh:  # a new connection each time
                    pid = _metric(fresh.get("/metrics").text, "rag_worker_pid")
                    body = fresh.post("/api/ask", json={"question": "临澧县今年新建了多少座农村公路桥梁？"}).json()
                    return pid, body["answer"], [c["doc_id"] for c in body["citations"]]

            replies = list(pool.map(ask, range(24)))
            assert {pid for pid, _, _ in replies} == pids, "both workers were asked"
            for pid, answer, cited in replies:
                assert "47" in answer and [Path(c).name for c in cited] == ["bridges.md"], (pid, answer)

            def listed(_: int) -> tuple[int, int]:
                with httpx.Client(base_url=base, timeout=60) as fresh:
                    documents = len(fresh.get("/api/documents").json()["documents"])
                    return documents, fresh.get("/api/index/status").json()["documents"]

            assert set(pool.map(listed, range(24))) == {(2, 2)}


def test_an_update_s_progress_is_reported_by_every_process(tmp_path: Path) -> None:
    from api.work import IndexProgress

    path = tmp_path / ".progress.json"
    writer, other = IndexProgress(path), IndexProgress(path)  # two processes sharing an index folder
    assert other.status()["busy"] is False
    writer.start("report.pdf")
    writer.update("embedding chunks", 3, 10)
    writer.update("writing the index", 0, 0)  # a new stage is shared at once
    seen = other.status()
    assert seen["busy"] and seen["document"] == "report.pdf" and seen["stage"] == "writing the index"
    writer.finish()
    assert other.status()["busy"] is False


def test_a_progress_left_by_a_process_that_is_gone_is_no_update(tmp_path: Path) -> None:
    import json
    import socket

    from api.work import IndexProgress

    path = tmp_path / ".progress.json"
    gone = {"busy": True, "document": "a.pdf", "stage": "writing the index", "done": 0, "total": 0}
    gone |= {"started_at": time.time() - 5, "at": time.time(), "pid": 2**22 + 12345, "host": socket.gethostname()}
    path.write_text(json.dumps(gone), encoding="utf-8")
    assert IndexProgress(path).status()["busy"] is False
