"""Hostile input is bounded work (issue 27): uploaded files are read in processes of their own
within CPU, memory and time limits, a bounded number at a time, cancelled for real; a Word file
unpacks to a bound set by its own size. The server tests run a real ``rag serve``."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from api.process import server_process
from eval.hostile import docx_bomb, slow_pdf
from rag.answer.retrieval import Pipeline
from rag.config import Settings
from rag.errors import Busy, Interrupted, LoaderError, ParseLimitExceeded
from rag.ingest import sandbox
from rag.ingest.loaders import ReadOptions, parse_bytes
from rag.ingest.sandbox import ParseLimits, read_isolated
from tests.conftest import server_env

TEXT = "凤凰纪委为农民工解“薪”愁\n\n凤凰县今年为386名农民工追回了拖欠工资。"


def _read(data: bytes, name: str, limits: ParseLimits, stop: threading.Event | None = None) -> object:
    return read_isolated(data, f"docs/{name}", f"/docs/{name}", "", ReadOptions(), limits, stop=stop)


def test_a_file_is_read_in_a_child_process_as_it_is_in_this_one() -> None:
    data = TEXT.encode()
    assert _read(data, "a.txt", ParseLimits()) == parse_bytes(data, "docs/a.txt", "/docs/a.txt")
    with pytest.raises(LoaderError, match="not UTF-8 or GB18030"):
        _read(b"\xff\xfe\x00\xd8" * 10, "b.txt", ParseLimits())


def test_a_file_that_takes_too_much_cpu_is_stopped_at_the_limit() -> None:
    started = time.monotonic()
    with pytest.raises(ParseLimitExceeded, match=r"more than 1 s of CPU time \(RAG_PARSE_CPU_S\)"):
        _read(slow_pdf(operators=300_000, pages=20), "slow.pdf", ParseLimits(cpu_s=1))
    assert time.monotonic() - started < 15  # the whole file would take minutes


def test_a_file_that_takes_too_much_memory_is_stopped_at_the_limit() -> None:
    baseline = ParseLimits(memory_bytes=2**40)
    _read(b"x", "tiny.txt", baseline)  # starts the reading server
    big = ("凤凰县" * 12_000_000).encode()  # 108 MB of text, several copies while it is cleaned
    with pytest.raises(ParseLimitExceeded, match=r"more than 200 MB of memory \(RAG_PARSE_MEMORY_MB\)"):
        _read(big, "big.txt", ParseLimits(memory_bytes=200 * 2**20))


def test_a_stopped_reading_ends_at_once_and_its_process_goes() -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        _read(slow_pdf(operators=300_000, pages=20), "slow.pdf", ParseLimits(), stop)
    assert time.monotonic() - started < 3
    assert not sandbox._children


def test_stop_all_kills_every_reading() -> None:
    """What SIGTERM does to the uploads being read (api.app)."""
    failed: list[BaseException] = []

    def read() -> None:
        try:
            _read(slow_pdf(operators=300_000, pages=20), "slow.pdf", ParseLimits())
        except BaseException as exc:
            failed.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    while len(sandbox._children) < 2:
        time.sleep(0.05)
    time.sleep(0.3)
    assert sandbox.stop_all() == 2
    for reader in readers:
        reader.join(5)
    assert len(failed) == 2 and all(isinstance(exc, Busy) and "stopping" in str(exc) for exc in failed), failed


def test_a_word_file_unpacks_to_a_bound_set_by_its_own_size() -> None:
    bomb = docx_bomb(100 * 2**20)
    assert len(bomb) < 200_000
    started = time.monotonic()
    with pytest.raises(LoaderError, match="zip bomb"):
        parse_bytes(bomb, "docs/bomb.docx", "/docs/bomb.docx")
    assert time.monotonic() - started < 5


def test_uploads_being_read_are_bounded_per_server_and_per_client_and_sigterm_stops_them(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    """Hostile PDFs fill the reading queue: a client past its share gets 503, then anyone past the
    server's limit, each naming its setting; questions and health are answered meanwhile; SIGTERM
    stops the server in seconds and leaves no reading process behind."""
    env = server_env(
        seed_settings, tmp_path, RAG_MAX_PENDING_PARSES="4", RAG_PARSES_PER_CLIENT="3", RAG_PARSE_CPU_S="600"
    )
    slow = slow_pdf(operators=300_000, pages=20)
    with server_process(env, tmp_path / "server.log") as (base, server):

        async def run() -> tuple[list[httpx.Response], list[BaseException | httpx.Response], float, float]:
            other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")  # a second client address
            async with (
                httpx.AsyncClient(base_url=base, timeout=120) as http,
                httpx.AsyncClient(base_url=base, timeout=120, transport=other) as neighbour,
            ):

                def upload(client: httpx.AsyncClient, n: int) -> asyncio.Task[httpx.Response]:
                    files = {"file": (f"slow-{n}.pdf", slow, "application/pdf")}
                    return asyncio.create_task(client.post("/api/documents", files=files))

                uploads = [upload(http, n) for n in range(3)] + [upload(neighbour, 3)]
                await asyncio.sleep(1.5)
                refused = [await upload(http, 4), await upload(neighbour, 5)]
                started = time.perf_counter()
                answered = await http.post("/api/ask", json={"question": "凤凰县为多少名农民工追回了拖欠工资？"})
                asked_s = time.perf_counter() - started
                assert answered.status_code == 200 and "386" in answered.json()["answer"]
                assert (await http.get("/api/health")).status_code == 200
                assert "rag_uploads_being_read 4.0" in (await http.get("/metrics")).text
                readers = psutil.Process(server.pid).children(recursive=True)
                signalled = time.monotonic()
                server.send_signal(signal.SIGTERM)
                ended = list(await asyncio.gather(*uploads, return_exceptions=True))
                server.wait(timeout=30)
                stopped_s = time.monotonic() - signalled
                _, alive = psutil.wait_procs(readers, timeout=5)
                assert not alive, alive
                return refused, ended, asked_s, stopped_s

        refused, ended, asked_s, stopped_s = asyncio.run(run())
    assert [r.status_code for r in refused] == [503, 503]
    assert "this client already has 3" in refused[0].json()["message"]
    assert "RAG_MAX_PENDING_PARSES" in refused[1].json()["message"]
    for outcome in ended:  # told to come back, or cut off as the server went
        assert isinstance(outcome, httpx.TransportError) or outcome.status_code == 503, outcome
    assert asked_s < 5, asked_s
    assert stopped_s < 8, stopped_s  # before: the graceful timeout (30 s), the PDFs still being read
