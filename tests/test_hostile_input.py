"""Hostile input is bounded work (issue 27): uploaded files are read in processes of their own
within CPU, memory and time limits, a bounded number at a time, cancelled for real; a Word file
unpacks to a bound set by its own size. The server tests run a real ``rag serve``."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from api.cli import RateLimitFilter
from api.errors import log_unexpected
from api.observability import TextFormatter, log_config
from api.process import server_process
from api.work import PageRenders
from eval.hostile import docx_bomb, slow_pdf
from rag.answer.retrieval import Pipeline
from rag.config import Settings
from rag.errors import Busy, Interrupted, LoaderError, ParseLimitExceeded
from rag.ingest import sandbox
from rag.ingest.loaders import ReadOptions, parse_bytes
from rag.ingest.sandbox import ParseLimits, read_isolated
from rag.ingest.scans import ScanLimits, image_page_count
from rag.ingest.scans import page_image as render_page
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


def _tiff(*sizes: tuple[int, int], mode: str = "L") -> bytes:
    from PIL import Image

    frames = [Image.new(mode, size, 255) for size in sizes]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    return out.getvalue()


def test_every_frame_of_a_tiff_is_held_to_the_pixel_limit() -> None:
    """The limit was checked on the first frame only: a second one of 40 MP decoded (+1.77 GB)."""
    limits = ScanLimits(max_image_pixels=20_000)
    tiff = _tiff((100, 100), (400, 400))
    with pytest.raises(LoaderError, match=r"400x400 pixels, over 20,000 \(RAG_MAX_IMAGE_PIXELS\)"):
        image_page_count(tiff, "two.tif", limits)
    with pytest.raises(LoaderError, match="RAG_MAX_IMAGE_PIXELS"):
        render_page(tiff, "two.tif", 2, limits)
    assert render_page(tiff, "two.tif", 1, limits)[:2] == b"\xff\xd8"  # the small frame is shown


def test_a_frame_past_pillows_own_bomb_limit_is_a_clear_error_not_a_crash() -> None:
    """A 20,000 x 20,000 frame raised DecompressionBombError (500): now a LoaderError (422)."""
    tiff = _tiff((100, 100), (20_000, 20_000), mode="1")
    with pytest.raises(LoaderError, match="RAG_MAX_IMAGE_PIXELS"):
        render_page(tiff, "bomb.tif", 2, ScanLimits(max_image_pixels=10**10))


def test_a_page_is_rendered_once_for_many_requests_and_again_when_its_file_changes() -> None:
    renders: list[str] = []

    def render(version: str) -> bytes:
        time.sleep(0.05)
        renders.append(version)
        return version.encode() * 1000

    pages = PageRenders(concurrent=1, max_bytes=10_000)

    async def run() -> list[bytes]:
        return list(await asyncio.gather(*(pages.get("p1", (1, 1), lambda: render("a")) for _ in range(8))))

    assert asyncio.run(run()) == [b"a" * 1000] * 8 and renders == ["a"]
    assert asyncio.run(pages.get("p1", (2, 2), lambda: render("b"))) == b"b" * 1000 and renders == ["a", "b"]
    for n in range(12):  # past max_bytes the oldest go
        asyncio.run(pages.get(f"other{n}", (1, 1), lambda: render("c")))
    assert pages.cached("p1", (2, 2)) is None and pages.cached("other11", (1, 1)) == b"c" * 1000


def test_one_client_with_many_idle_sockets_does_not_starve_the_others(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    """Hundreds of idle sockets from one address took every connection (89 of 90 requests got
    503, liveness too); now that address holds RAG_MAX_CONNECTIONS_PER_CLIENT, the rest close."""
    env = server_env(seed_settings, tmp_path, RAG_MAX_CONNECTIONS="40", RAG_MAX_CONNECTIONS_PER_CLIENT="20")
    with server_process(env, tmp_path / "server.log") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port))) for _ in range(60)]
        time.sleep(0.5)
        closed = 0
        for sock in idle:
            sock.settimeout(0.2)
            try:
                closed += sock.recv(1) == b""
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed += 1
        other = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=base, timeout=30, transport=other) as http:
            statuses = [http.get("/api/health/live").status_code for _ in range(10)]
            asked = http.post("/api/ask", json={"question": "凤凰县为多少名农民工追回了拖欠工资？"})
        for sock in idle:
            sock.close()
    assert closed == 40, closed  # all but the 20 the address may hold
    assert statuses == [200] * 10 and asked.status_code == 200


def test_a_client_cannot_forge_a_line_of_the_text_log() -> None:
    """``GET /a%0a2026-12-05 ERROR ...`` wrote a second, forged line; control characters are escaped."""
    formatter = TextFormatter(log_config("text", "info")["formatters"]["main"]["fmt"])
    record = logging.LogRecord(
        "rag.access", logging.WARNING, __file__, 1, "%s %s", ("GET", "/a\n2026 ERROR x\x1b[2J"), None
    )
    record.request_id = "-"
    line = formatter.format(record)
    assert "\n" not in line and line.endswith("GET /a\\n2026 ERROR x\\x1b[2J")


def test_a_flood_of_one_failure_logs_one_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """A failing request repeated thousands of times wrote a traceback each (5,400 lines); the
    log keeps one per kind and place every 10 s, and another failure still gets its own."""
    log = logging.getLogger("test.unexpected")
    log.addFilter(RateLimitFilter())

    def fail(value: object) -> None:
        raise ValueError(f"bad {value}")

    for n in range(50):
        try:
            fail(n)
        except ValueError as exc:
            log_unexpected(log, exc)
    try:
        {}["missing"]
    except KeyError as exc:
        log_unexpected(log, exc)
    kept = [r for r in caplog.records if r.name == "test.unexpected"]
    assert [r.getMessage().split(" at ")[0] for r in kept] == [
        "unexpected error: ValueError",
        "unexpected error: KeyError",
    ]
    assert all(r.exc_info for r in kept)
