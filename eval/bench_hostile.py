"""What hostile clients cost a real server (issue 27): one command, one figure per attack.

``python -m eval.bench_hostile [--uploads 60] [--json PATH]`` (``make index`` first). It
starts ``rag serve`` (extractive, as started by default otherwise) on a copy of the seed
index, on loopback only, and measures:

- question and health p99, idle, then while ``--uploads`` hostile PDFs (350,000 text
  operators a page) are sent at once from several client addresses (127.0.0.x);
- the server's RSS peak above idle while 8 clients ask at once for a page of a 79-megapixel
  scan (uploaded first, read by OCR);
- ``auto`` asked of a server that offers only extractive: the status, the generator that
  answered, and the RSS growth (a loaded LLM is about +1.9 GB);
- 600 idle sockets from one address, then 90 requests from another: how many got 503;
- the time from SIGTERM to exit while hostile PDFs are being read.

Targets: p99 under load < 2 x idle; page RSS < 300 MB above idle; auto answered
extractively with no model loaded; 0 of 90 refused; SIGTERM < 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from api.process import server_process
from eval.data import ROOT
from eval.hostile import slow_pdf
from eval.metrics import percentile

QUESTION = "凤凰县为多少名农民工追回了拖欠工资？"


def _p99(times: list[float]) -> float:
    return round(percentile(times, 99) * 1000, 1)


async def _timed(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> tuple[float, int]:
    started = time.perf_counter()
    response = await http.request(method, path, **kwargs)
    return time.perf_counter() - started, response.status_code


async def _probe(base: str, rounds: int) -> dict[str, float]:
    """Questions and health checks in turn, ``rounds`` of each: their p99 in ms."""
    asked: list[float] = []
    health: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for _ in range(rounds):
            asked.append((await _timed(http, "POST", "/api/ask", json={"question": QUESTION}))[0])
            health.append((await _timed(http, "GET", "/api/health"))[0])
    return {"question_p99_ms": _p99(asked), "health_p99_ms": _p99(health)}


async def _flood(base: str, uploads: int, pdf: bytes) -> list[asyncio.Task[httpx.Response]]:
    """Start ``uploads`` hostile uploads from 8 client addresses; they run on."""
    clients = [
        httpx.AsyncClient(
            base_url=base, timeout=600, transport=httpx.AsyncHTTPTransport(local_address=f"127.0.0.{n + 2}")
        )
        for n in range(8)
    ]
    tasks = []
    for n in range(uploads):
        files = {"file": (f"hostile-{n}.pdf", pdf, "application/pdf")}
        tasks.append(asyncio.create_task(clients[n % len(clients)].post("/api/documents", files=files)))
    await asyncio.sleep(2)
    return tasks


def _rss(pid: int) -> int:
    process = psutil.Process(pid)
    return int(process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True)))


def _watch_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return
        time.sleep(0.01)


def _large_scan() -> bytes:
    """A 79-megapixel RGB page (10,300 x 7,700) with one printed line, as PNG."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (10_300, 7_700), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    try:
        font: Any = ImageFont.truetype("NotoSansCJK-Regular.ttc", 160)
    except OSError:
        font = ImageFont.load_default(160)
    draw.text((600, 600), "Fenghuang recovered wages for 386 workers", fill=(20, 20, 20), font=font)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _pages(base: str, pid: int) -> dict[str, Any]:
    """RSS peak above idle while 8 clients ask at once for the large scan's page."""
    scan = _large_scan()
    uploaded = httpx.post(f"{base}/api/documents", files={"file": ("large.png", scan, "image/png")}, timeout=900)
    if uploaded.status_code != 201:
        return {"error": f"the scan upload got {uploaded.status_code}: {uploaded.text[:200]}"}
    doc_id = uploaded.json()["doc_id"]
    time.sleep(1)
    idle = psutil.Process(pid).memory_info().rss
    stop, peak = threading.Event(), [idle]
    watcher = threading.Thread(target=_watch_rss, args=(pid, stop, peak))
    watcher.start()

    async def eight() -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=300) as http:
            done = await asyncio.gather(*(http.get(f"/api/documents/{doc_id}/pages/1") for _ in range(8)))
            return [r.status_code for r in done]

    started = time.perf_counter()
    statuses = asyncio.run(eight())
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    return {
        "statuses": statuses,
        "rss_peak_above_idle_mb": round((peak[0] - idle) / 2**20),
        "seconds_for_8": round(seconds, 2),
    }


def _auto(base: str, pid: int) -> dict[str, Any]:
    before = _rss(pid)
    response = httpx.post(f"{base}/api/ask", json={"question": QUESTION, "generator": "auto"}, timeout=120)
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    return {
        "status": response.status_code,
        "model_tokens": int((body.get("usage") or {}).get("total_tokens", 0)),  # 0: answered extractively
        "rss_growth_mb": round((_rss(pid) - before) / 2**20),
    }


def _idle_sockets(base: str) -> dict[str, int]:
    host, port = base.removeprefix("http://").split(":")
    idle = []
    for _ in range(600):
        try:
            idle.append(socket.create_connection((host, int(port)), timeout=2))
        except OSError:
            break
    time.sleep(0.5)
    refused = 0
    with httpx.Client(base_url=base, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.2")) as http:
        for n in range(90):
            path = "/api/health/live" if n % 3 == 0 else "/api/health"
            try:
                refused += http.get(path).status_code != 200
            except httpx.TransportError:
                refused += 1
    for sock in idle:
        sock.close()
    return {"sockets_opened": len(idle), "refused_of_90": refused}


def _sigterm(env: dict[str, str], work: Path, pdf: bytes) -> float:
    """Seconds from SIGTERM to exit while hostile PDFs are being read."""
    with server_process(env, work / "sigterm.log") as (base, server):

        async def run() -> float:
            tasks = await _flood(base, 8, pdf)
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.wait, 60)
            stopped = time.monotonic() - started
            await asyncio.gather(*tasks, return_exceptions=True)
            return stopped

        return round(asyncio.run(run()), 2)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.bench_hostile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=60, help="hostile PDF uploads at once")
    parser.add_argument("--rounds", type=int, default=40, help="questions and health checks for each p99")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not (ROOT / "index").exists():
        parser.error("no seed index: run `make index` first")
    pdf = slow_pdf(operators=350_000, pages=20)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rag-hostile-") as folder:
        work = Path(folder)
        shutil.copytree(ROOT / "index", work / "index")
        env = {
            "RAG_INDEX_DIR": str(work / "index"),
            "RAG_DOCUMENTS_DIR": str(work / "documents"),
            "RAG_GENERATOR": "extractive",
        }
        with server_process(env, work / "server.log") as (base, server):
            figures["idle"] = asyncio.run(_probe(base, args.rounds))

            async def loaded() -> tuple[dict[str, float], list[int]]:
                tasks = await _flood(base, args.uploads, pdf)
                probe = await _probe(base, args.rounds)
                # The uploads still being read are given up (their readings are killed).
                statuses = [t.result().status_code for t in tasks if t.done() and not t.exception()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                return probe, statuses + [0] * (len(tasks) - len(statuses))

            figures["under_uploads"], statuses = asyncio.run(loaded())
            figures["upload_statuses"] = {str(s): statuses.count(s) for s in sorted(set(statuses))}
            figures["auto_on_extractive_server"] = _auto(base, server.pid)
            figures["idle_sockets"] = _idle_sockets(base)
            figures["page_images"] = _pages(base, server.pid)
        figures["sigterm_s"] = _sigterm(env, work, pdf)
    idle, loaded_ = figures["idle"], figures["under_uploads"]
    print(f"questions p99: idle {idle['question_p99_ms']} ms, under {args.uploads} hostile uploads "
          f"{loaded_['question_p99_ms']} ms (target < 2x idle)")  # fmt: skip
    print(f"health p99:    idle {idle['health_p99_ms']} ms, under uploads {loaded_['health_p99_ms']} ms")
    print(f"upload replies: {figures['upload_statuses']} (0: still being read when the probe ended)")
    pages = figures["page_images"]
    print(f"page of a 79 MP scan, 8 at once: {pages} (target < 300 MB above idle)")
    print(f"auto on an extractive-only server: {figures['auto_on_extractive_server']}")
    print(f"600 idle sockets from one address: {figures['idle_sockets']} (target 0 refused)")
    print(f"SIGTERM under parse load: {figures['sigterm_s']} s (target < 5 s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
