"""Load test of POST /api/ask on loopback: N concurrent clients for a fixed time.

``python -m eval.bench_load [--url URL] [--clients 16] [--seconds 60]``. Without ``--url``
it starts ``rag serve`` on a free loopback port over the seed index (``make index``
first) and stops it afterwards. The clients ask the seed questions in turn with the
extractive generator. Bounded in time; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from eval.data import ROOT, load_seed
from eval.metrics import percentile


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(
    env: dict[str, str], log: Path, ready_s: float = 180
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``rag serve`` as a real process on a free loopback port; yields its base URL and process once ready."""
    port = _free_port()
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "rag"), "serve", "--port", str(port), "--log-level", "warning"],
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"the server stopped: {log.read_text(errors='replace')[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready")
            time.sleep(0.5)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def running_server(env: dict[str, str], log: Path, ready_s: float = 180) -> Iterator[str]:
    """``rag serve`` as a real process on a free loopback port; yields its base URL once ready."""
    with server_process(env, log, ready_s) as (base, _):
        yield base


async def _client(
    http: httpx.AsyncClient, questions: list[str], offset: int, stop_at: float, out: list[tuple[float, int]]
) -> None:
    n = offset
    while time.monotonic() < stop_at:
        question = questions[n % len(questions)]
        n += 1
        started = time.perf_counter()
        try:
            response = await http.post("/api/ask", json={"question": question, "generator": "extractive"})
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        out.append(((time.perf_counter() - started) * 1000, status))


async def run_load(url: str, clients: int, seconds: float) -> dict[str, float]:
    """Drive the server and summarise latency and errors."""
    questions = [q.question for q in load_seed().questions]
    results: list[tuple[float, int]] = []
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*(_client(http, questions, i * 7, stop_at, results) for i in range(clients)))
        elapsed = time.monotonic() - started
    latencies = [ms for ms, status in results if status == 200]
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": len(results),
        "requests_per_s": len(results) / elapsed,
        "errors": sum(1 for _, status in results if status != 200),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
    }


def main() -> int:
    """Run the load test and print one Markdown row."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="", help="a running server (default: start one on loopback)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if args.url:
        result = asyncio.run(run_load(args.url, args.clients, min(args.seconds, 600)))
    else:
        # The extractive generator, asked for by every request: no local LLM to load.
        with running_server({"RAG_GENERATOR": "extractive"}, Path(tempfile.gettempdir()) / "rag-load.log") as url:
            result = asyncio.run(run_load(url, args.clients, min(args.seconds, 600)))
    line = (
        f"| {result['clients']} | {result['seconds']:.0f} | {result['requests']} | {result['requests_per_s']:.1f} | "
        f"{result['p50_ms']:.0f} | {result['p95_ms']:.0f} | {result['p99_ms']:.0f} | {result['errors']} |"
    )
    table = (
        "| clients | seconds | requests | requests/s | p50 ms | p95 ms | p99 ms | errors |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    print(table + line)
    reports = ROOT / "eval" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench_load.md").write_text(table + line + "\n", encoding="utf-8")
    (reports / "bench_load.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
