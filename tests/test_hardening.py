"""Issue 13's findings, each reproduced against a real ``rag serve`` process (or the
library where the finding is about it), and what already held, kept holding."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from api.cli import RateLimitFilter
from eval.bench_load import uploads_agree
from rag.config import Settings
from rag.pipeline import Pipeline
from tests.conftest import running_server

QUESTION = "凤凰县为多少名农民工追回了拖欠工资？"
POISON = '{"question": "x\\ud800"}'  # a lone surrogate, escaped in JSON
JSON = {"Content-Type": "application/json"}


def server_env(settings: Settings, folder: Path, **extra: str) -> dict[str, str]:
    """A copy of the seed index of its own, so that writes leave other tests' index alone."""
    shutil.copytree(settings.index_dir, folder / "index")
    return {
        "RAG_INDEX_DIR": str(folder / "index"),
        "RAG_CACHE_DIR": str(settings.cache_dir),
        "RAG_DOCUMENTS_DIR": str(folder / "documents"),
        "RAG_GENERATOR": "extractive",
        **extra,
    }


@pytest.fixture(scope="module")
def base_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hardening") / "server.log"


@pytest.fixture(scope="module")
def base(seed_settings: Settings, seed_pipeline: Pipeline, base_log: Path) -> Iterator[str]:
    env = server_env(seed_settings, base_log.parent, RAG_MAX_PENDING_WRITES="2", RAG_HEADER_TIMEOUT_S="1")
    with running_server(env, base_log) as url:
        yield url


# 1. One bad request must not fail the others.


def test_a_poison_question_fails_alone_while_others_share_its_batch(base: str) -> None:
    async def run() -> tuple[list[int], list[int]]:
        good: list[int] = []
        bad: list[int] = []
        stop = time.monotonic() + 4
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:

            async def normal() -> None:
                while time.monotonic() < stop:
                    good.append((await http.post("/api/ask", json={"question": QUESTION})).status_code)

            async def poison() -> None:
                while time.monotonic() < stop:
                    bad.append((await http.post("/api/ask", content=POISON, headers=JSON)).status_code)

            await asyncio.gather(*(normal() for _ in range(8)), *(poison() for _ in range(2)))
        return good, bad

    good, bad = asyncio.run(run())
    assert good and set(good) == {200}, f"{sum(s != 200 for s in good)} of {len(good)} normal questions failed"
    assert bad and set(bad) == {422}
    earlier = {"model": "extractive", "messages": [{"role": "user", "content": "x\ud800"}]}
    earlier["messages"].append({"role": "user", "content": QUESTION})
    response = httpx.post(f"{base}/v1/chat/completions", content=json.dumps(earlier), headers=JSON, timeout=30)
    assert response.status_code == 422 and "invalid character" in response.json()["error"]["message"]


# 2. Safe without keys: loopback names only, no cross-origin writes, JSON only as JSON.


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


# 3. Writers must not starve readers.


def test_queued_writes_do_not_starve_readers_and_a_full_queue_says_when_to_retry(base: str) -> None:
    big = "。".join(f"第{n}条：凤凰县今年新建了{n}座桥，总投资{n}亿元" for n in range(900))

    async def run() -> tuple[list[int], list[float], list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            upload = asyncio.create_task(http.post("/api/documents", json={"name": "big.txt", "text": big}))
            await asyncio.sleep(0.5)
            deletes = [asyncio.create_task(http.delete(f"/api/documents/documents/none-{n}.txt")) for n in range(20)]
            health: list[float] = []
            for _ in range(5):
                started = time.perf_counter()
                assert (await http.get("/api/health")).status_code == 200
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.2)
            statuses = [r.status_code for r in await asyncio.gather(*deletes)]
            busy = [r for r in await asyncio.gather(*deletes) if r.status_code == 503]
            assert (await upload).status_code == 201
            await http.delete("/api/documents/documents/big.txt")
            return statuses, health, busy

    statuses, health, busy = asyncio.run(run())
    assert max(health) < 1.0, health
    assert set(statuses) <= {404, 503} and statuses.count(503) >= 15  # 2 may wait; the rest are told to retry
    assert all(int(r.headers["Retry-After"]) > 0 for r in busy)


def test_an_upload_whose_client_goes_away_is_stopped_and_saves_nothing(base: str) -> None:
    big = "。".join(f"第{n}条：资兴市今年新建了{n}个研学基地，接待{n}万人次" for n in range(1500))
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{base}/api/documents", json={"name": "abandoned.txt", "text": big}, timeout=1.5)
    started = time.perf_counter()
    small = httpx.post(
        f"{base}/api/documents", json={"name": "after.txt", "text": "资兴市新建了 5 个研学基地。"}, timeout=120
    )
    assert small.status_code == 201
    # Indexing all of it takes tens of seconds here; stopped, the writer is free in a few.
    assert time.perf_counter() - started < 15
    ids = {d["doc_id"] for d in httpx.get(f"{base}/api/documents").json()["documents"]}
    assert "documents/abandoned.txt" not in ids and "documents/after.txt" in ids
    assert httpx.delete(f"{base}/api/documents/documents/after.txt", timeout=60).status_code == 204


# 5. Connections are bounded.


def test_idle_and_half_sent_connections_are_closed(base: str) -> None:
    host, port = base.removeprefix("http://").split(":")
    sockets = []
    for n in range(60):
        sock = socket.create_connection((host, int(port)))
        if n % 2:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n")  # headers never finished
        sockets.append(sock)
    assert httpx.get(f"{base}/api/health", timeout=5).status_code == 200
    time.sleep(2.5)
    closed = 0
    for sock in sockets:
        sock.settimeout(2)
        try:
            closed += sock.recv(1024) == b""
        except (TimeoutError, ConnectionResetError):
            pass
        sock.close()
    assert closed == len(sockets)


def test_more_connections_than_open_files_neither_stop_the_server_nor_flood_its_log(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    """Under ``ulimit -n 256``, 400 idle connections: accept() fails for a while, the server
    closes the idle ones, health answers again, and the log stays short."""
    from eval.bench_load import server_process

    env = server_env(seed_settings, tmp_path, RAG_HEADER_TIMEOUT_S="2")
    log = tmp_path / "server.log"
    with server_process(env, log, open_files=256) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        sockets = []
        for _ in range(400):
            try:
                sockets.append(socket.create_connection((host, int(port)), timeout=2))
            except OSError:
                break
        time.sleep(6)
        assert httpx.get(f"{url}/api/health", timeout=10).status_code == 200
        for sock in sockets:
            sock.close()
        assert httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=30).status_code == 200
    assert log.stat().st_size < 20_000, log.read_text(errors="replace")[-2000:]


def test_language_model_answers_are_bounded_and_the_rest_told_to_retry(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    from tests.fakes import fake_llm_server

    replies = {"Fenghuang": "Fenghuang recovered wages for 386 workers [1]."}
    with fake_llm_server(replies, delay_s=3.0) as llm:
        env = server_env(
            seed_settings, tmp_path, RAG_GENERATOR="openai", RAG_OPENAI_BASE_URL=llm, RAG_MAX_PENDING_ANSWERS="2"
        )
        with running_server(env, tmp_path / "server.log") as url:
            question = {"question": "How many workers did Fenghuang recover wages for?"}

            async def run() -> tuple[list[httpx.Response], list[int]]:
                async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                    llm_answers = [asyncio.create_task(http.post("/api/ask", json=question)) for _ in range(6)]
                    await asyncio.sleep(0.5)
                    extractive = [
                        (await http.post("/api/ask", json={**question, "generator": "extractive"})).status_code
                        for _ in range(3)
                    ]
                    return list(await asyncio.gather(*llm_answers)), extractive

            answers, extractive = asyncio.run(run())
            statuses = sorted(r.status_code for r in answers)
            assert statuses == [200, 200, 503, 503, 503, 503]
            assert all(int(r.headers["Retry-After"]) > 0 for r in answers if r.status_code == 503)
            assert extractive == [200, 200, 200]
            # The slots came back, the streamed ones too.
            with httpx.stream("POST", f"{url}/api/ask/stream", json=question, timeout=60) as stream:
                assert "event: done" in "".join(stream.iter_text())
            again = [httpx.post(f"{url}/api/ask", json=question, timeout=60).status_code for _ in range(2)]
            assert again == [200, 200]


def test_repeated_log_lines_are_rate_limited() -> None:
    limiter = RateLimitFilter(every_s=60)
    records = [logging.LogRecord("asyncio", logging.ERROR, "", 0, "socket.accept() out of system resource", (), None)
               for _ in range(1000)]  # fmt: skip
    passed = [r for r in records if limiter.filter(r)]
    assert len(passed) == 1
    other = logging.LogRecord("asyncio", logging.ERROR, "", 0, "another message", (), None)
    assert limiter.filter(other)


# 6. and 7. Limits on what a request carries and which generators it may use.


def test_earlier_messages_and_bodies_are_bounded(base: str) -> None:
    long_turn = {"model": "extractive", "messages": [{"role": "user", "content": "长" * 20_001}]}
    long_turn["messages"].append({"role": "user", "content": QUESTION})
    started = time.perf_counter()
    response = httpx.post(f"{base}/v1/chat/completions", json=long_turn, timeout=30)
    assert response.status_code == 422 and "20000" in response.json()["error"]["message"]
    huge = {"model": "extractive", "messages": [{"role": "user", "content": "长" * 10_000_000}]}
    assert httpx.post(f"{base}/v1/chat/completions", json=huge, timeout=30).status_code == 413
    assert time.perf_counter() - started < 5


def test_a_client_cannot_load_a_generator_the_server_does_not_offer(base: str) -> None:
    response = httpx.post(f"{base}/api/ask", json={"question": QUESTION, "generator": "llama-cpp"}, timeout=30)
    assert response.status_code == 422 and "RAG_OFFERED_GENERATORS" in response.json()["message"]
    assert [m["id"] for m in httpx.get(f"{base}/v1/models").json()["data"]] == ["extractive"]


# 8. Names and identities.


def test_upload_names_keep_their_identity(base: str) -> None:
    def upload(name: str, text: str = "资兴市新建了 5 个研学基地。", **params: str) -> httpx.Response:
        return httpx.post(f"{base}/api/documents", json={"name": name, "text": text}, params=params, timeout=60)

    long_name = "长" * 120 + ".txt"
    created = upload(long_name)
    assert created.status_code == 201 and created.json()["source"].endswith(".txt")
    files = {"file": ("x" * 300 + ".md", "# 标题\n\n资兴市新建了 6 个研学基地。".encode(), "text/markdown")}
    multipart = httpx.post(f"{base}/api/documents", files=files, timeout=60)
    assert multipart.status_code == 201 and multipart.json()["source"].endswith(".md")
    ids = [upload(name).json()["doc_id"] for name in ("a b.txt", "a?b.txt", "a_b.txt")]
    assert len(set(ids)) == 3
    assert upload("a\u0000b.txt").status_code == 422
    again = upload("a b.txt", "资兴市新建了 7 个研学基地。")
    assert again.status_code == 409 and "replace=true" in again.json()["message"]
    assert upload("a b.txt", "资兴市新建了 7 个研学基地。", replace="true").status_code == 201
    for doc_id in [*ids, created.json()["doc_id"], multipart.json()["doc_id"]]:
        assert httpx.delete(f"{base}/api/documents/{quote(doc_id)}", timeout=60).status_code == 204


def test_two_folders_with_one_name_are_not_one_document(tmp_path: Path, hash_embedder: Any) -> None:
    from rag.service import index_paths

    for side in ("A", "B"):
        (tmp_path / side / "news").mkdir(parents=True)
        (tmp_path / side / "news" / "x.txt").write_text(f"{side} 报道：今年新建了 3 座桥。", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    result = index_paths(settings, [tmp_path / "A" / "news", tmp_path / "B" / "news"], hash_embedder)
    assert len(result.stats.added) == 1 and len(result.failed) == 1
    assert "same document id" in result.failed[0][1] and str(tmp_path / "A") in result.failed[0][1]


# 9. A lost CURRENT is an error, not a new empty index.


def test_a_lost_current_pointer_is_refused_not_replaced(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path, hash_embedder: Any
) -> None:
    from rag.errors import IndexCorrupt
    from rag.index import load_snapshot
    from rag.loaders import parse_text
    from rag.service import index_documents

    shutil.copytree(seed_settings.index_dir, tmp_path / "index")
    (tmp_path / "index" / "CURRENT").unlink()
    versions = sorted(p.name for p in (tmp_path / "index").glob("v-*"))
    with pytest.raises(IndexCorrupt, match="CURRENT is missing"):
        load_snapshot(tmp_path / "index")
    settings = seed_settings.model_copy(update={"index_dir": tmp_path / "index"})
    document = parse_text("今年新建了 3 座桥。", "documents/one.txt", "one.txt", "h")
    with pytest.raises(IndexCorrupt):
        index_documents(settings, [document], hash_embedder)
    assert sorted(p.name for p in (tmp_path / "index").glob("v-*")) == versions  # nothing pruned


# 10. The small ones.


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


def test_the_server_logged_no_traceback(base: str, base_log: Path) -> None:
    """After every request above (deletes included: their 204 once logged two tracebacks)."""
    assert "Traceback" not in base_log.read_text(errors="replace")


# 4. Crash-consistent uploads: kill -9 at random moments, restart, compare.


def crash_trials(settings: Settings, folder: Path, trials: int, seed: int) -> None:
    import random

    from eval.bench_load import server_process

    rng = random.Random(seed)
    env = server_env(settings, folder)
    documents = Path(env["RAG_DOCUMENTS_DIR"])
    for trial in range(trials):
        with server_process(env, folder / f"server-{trial}.log") as (url, server):
            agree, detail = uploads_agree(documents, Path(env["RAG_INDEX_DIR"]))
            assert agree, f"after restart {trial}: {detail}"

            def writes() -> None:
                with httpx.Client(base_url=url, timeout=60) as http:
                    for n in range(100):
                        name = f"doc-{rng.randrange(4)}.txt"
                        text = "。".join(f"资兴市第{n}批新建了{k}个研学基地" for k in range(rng.randrange(5, 60)))
                        try:
                            if rng.random() < 0.3:
                                http.delete(f"/api/documents/documents/{name}")
                            else:
                                http.post("/api/documents", json={"name": name, "text": text},
                                          params={"replace": "true"})  # fmt: skip
                        except httpx.HTTPError:
                            return

            writer = threading.Thread(target=writes, daemon=True)
            writer.start()
            time.sleep(rng.uniform(1.0, 6.0))
            server.kill()
            server.wait()
            writer.join(timeout=60)
    # One more start recovers whatever the last kill interrupted.
    with server_process(env, folder / "server-last.log"):
        pass
    agree, detail = uploads_agree(documents, Path(env["RAG_INDEX_DIR"]))
    assert agree, detail
    assert not list(documents.glob(".*"))  # no journal, staging or temporary file is left


def test_uploads_survive_kill_9_at_random_moments(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    crash_trials(seed_settings, tmp_path, trials=3, seed=13)


@pytest.mark.slow
def test_uploads_survive_kill_9_at_random_moments_20_times(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    crash_trials(seed_settings, tmp_path, trials=20, seed=1313)
