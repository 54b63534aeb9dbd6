"""One bad request fails alone, and work is bounded: queued writes, language-model answers,
connections, request bodies and log lines. Against a real ``rag serve``."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from pathlib import Path

import httpx
import pytest

from api.cli import RateLimitFilter
from rag.answer.retrieval import Pipeline
from rag.config import Settings
from tests.conftest import JSON, POISON, QUESTION, running_server, server_env


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
    from api.process import server_process

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


def test_earlier_messages_and_bodies_are_bounded(base: str) -> None:
    long_turn = {"model": "extractive", "messages": [{"role": "user", "content": "长" * 20_001}]}
    long_turn["messages"].append({"role": "user", "content": QUESTION})
    started = time.perf_counter()
    response = httpx.post(f"{base}/v1/chat/completions", json=long_turn, timeout=30)
    assert response.status_code == 422 and "20000" in response.json()["error"]["message"]
    huge = {"model": "extractive", "messages": [{"role": "user", "content": "长" * 10_000_000}]}
    assert httpx.post(f"{base}/v1/chat/completions", json=huge, timeout=30).status_code == 413
    assert time.perf_counter() - started < 5
