"""Load test of POST /api/ask on loopback: N concurrent clients for a fixed time.

``python -m eval.bench_load [--url URL] [--clients 16] [--seconds 60]``. Without ``--url``
it starts ``rag serve`` on a free loopback port over the seed index (``make index``
first) and stops it afterwards. The clients ask the seed questions in turn with the
extractive generator. Bounded in time; traffic goes to 127.0.0.1 only.

``--chaos`` mixes in what a hostile or careless client sends: of the clients, two upload,
replace and delete documents, one sends a poison question (a lone surrogate, which no
tokenizer takes) through ``/api/ask`` and an earlier ``/v1`` message, and the rest ask
through ``/api/ask``, its stream and ``/v1``. It runs on a copy of the seed index and
reports errors of well-formed requests (the target is 0) and whether the uploads folder
and the index agree at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

from api.process import running_server, server_process
from eval.data import ROOT, load_seed
from eval.metrics import percentile
from rag.library.uploads import uploads_agree


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


POISON = '{"question": "x\\ud800"}'
_JSON = {"Content-Type": "application/json"}


async def _chaos_asker(
    http: httpx.AsyncClient, questions: list[str], n: int, stop_at: float, out: dict[str, list[int]]
) -> None:
    """Asks in turn through /api/ask, its stream and /v1 (streamed and not)."""
    while time.monotonic() < stop_at:
        question = questions[n % len(questions)]
        mode = ("ask", "stream", "v1", "v1-stream")[n % 4]
        n += 1
        try:
            if mode == "ask":
                status = (await http.post("/api/ask", json={"question": question})).status_code
            elif mode == "stream":
                async with http.stream("POST", "/api/ask/stream", json={"question": question}) as response:
                    body = "".join([chunk async for chunk in response.aiter_text()])
                    status = response.status_code if "event: done" in body else 0
            else:
                chat = {"model": "extractive", "messages": [{"role": "user", "content": question}],
                        "stream": mode == "v1-stream"}  # fmt: skip
                async with http.stream("POST", "/v1/chat/completions", json=chat) as response:
                    body = "".join([chunk async for chunk in response.aiter_text()])
                    ok = mode == "v1" or body.rstrip().endswith("data: [DONE]")
                    status = response.status_code if ok else 0
        except httpx.HTTPError:
            status = 0
        out[mode].append(status)


async def _chaos_writer(http: httpx.AsyncClient, me: int, stop_at: float, out: dict[str, list[int]]) -> None:
    """Uploads, replaces and deletes its own documents; waits as told by a 503's Retry-After."""
    rng = random.Random(me)
    mine: set[str] = set()
    while time.monotonic() < stop_at:
        name = f"chaos-{me}-{rng.randrange(5)}.txt"
        try:
            if name in mine and rng.random() < 0.4:
                response = await http.delete(f"/api/documents/documents/{name}")
                kind = "delete"
                if response.status_code == 204:
                    mine.discard(name)
            else:
                lines = rng.randrange(3, 40)
                text = "。".join(f"第{me}号测试稿：某县今年第{k}批新建了{rng.randrange(99)}座桥" for k in range(lines))
                response = await http.post(
                    "/api/documents", json={"name": name, "text": text}, params={"replace": "true"}
                )
                kind = "upload"
                if response.status_code == 201:
                    mine.add(name)
            status = response.status_code
            if status == 503:
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        except httpx.HTTPError:
            kind, status = "upload", 0
        out[kind].append(status)


async def _chaos_poison(http: httpx.AsyncClient, stop_at: float, out: dict[str, list[int]]) -> None:
    earlier = {"model": "extractive", "messages": [{"role": "user", "content": "x\ud800"},
                                                    {"role": "user", "content": "凤凰县追回了多少工资？"}]}  # fmt: skip
    while time.monotonic() < stop_at:
        try:
            out["poison"].append((await http.post("/api/ask", content=POISON, headers=_JSON)).status_code)
            poisoned = json.dumps(earlier)  # ASCII-escaped: httpx's own JSON encoding refuses the surrogate
            out["poison"].append((await http.post("/v1/chat/completions", content=poisoned, headers=_JSON)).status_code)
        except httpx.HTTPError:
            out["poison"].append(0)


async def run_chaos(url: str, clients: int, seconds: float) -> dict[str, list[int]]:
    """Askers, two writers and a poison sender for ``seconds``; statuses by kind of request."""
    questions = [q.question for q in load_seed().questions]
    out: dict[str, list[int]] = {k: [] for k in ("ask", "stream", "v1", "v1-stream", "upload", "delete", "poison")}
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        stop_at = time.monotonic() + seconds
        askers = [_chaos_asker(http, questions, i * 7, stop_at, out) for i in range(max(1, clients - 3))]
        writers = [_chaos_writer(http, me, stop_at, out) for me in range(2)]
        await asyncio.gather(*askers, *writers, _chaos_poison(http, stop_at, out))
    return out


def chaos(clients: int, seconds: float) -> str:
    """Run the chaos soak on a copy of the seed index; returns the Markdown report."""
    work = Path(tempfile.mkdtemp(prefix="rag-chaos-"))
    try:
        shutil.copytree(ROOT / "index", work / "index")
        env = {
            "RAG_GENERATOR": "extractive",
            "RAG_INDEX_DIR": str(work / "index"),
            "RAG_DOCUMENTS_DIR": str(work / "documents"),
        }
        with server_process(env, work / "server.log") as (url, _):
            started = time.monotonic()
            out = asyncio.run(run_chaos(url, clients, seconds))
            elapsed = time.monotonic() - started
            listed = {d["doc_id"] for d in httpx.get(f"{url}/api/documents", timeout=60).json()["documents"]}
        agree, detail = uploads_agree(work / "documents", work / "index")
        served = {f"documents/{p.name}" for p in (work / "documents").iterdir() if not p.name.startswith(".")}
        agree = agree and served <= listed
        expected = {"ask": {200}, "stream": {200}, "v1": {200}, "v1-stream": {200}, "upload": {201},
                    "delete": {204}, "poison": {422}}  # fmt: skip
        rows = []
        for kind, statuses in out.items():
            busy = statuses.count(503) if kind in ("upload", "delete") else 0
            errors = sum(1 for s in statuses if s not in expected[kind] and not (s == 503 and busy))
            rows.append(f"| {kind} | {len(statuses)} | {errors} | {busy} |")
        well_formed = sum(len(v) for k, v in out.items() if k != "poison")
        return (
            f"{clients} clients for {elapsed:.0f} s: {well_formed} well-formed requests, "
            f"{len(out['poison'])} poison; uploads folder and index agree: {'yes' if agree else 'NO'} ({detail})\n\n"
            "| request | sent | errors | 503 (told to retry) |\n|---|---|---|---|\n" + "\n".join(rows)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    """Run the load test and print one Markdown row."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="", help="a running server (default: start one on loopback)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--chaos", action="store_true", help="mix in uploads, deletes and poison requests")
    args = parser.parse_args()
    if args.chaos:
        report = chaos(args.clients, args.seconds)
        print(report)
        reports = ROOT / "eval" / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        (reports / "bench_chaos.md").write_text(report + "\n", encoding="utf-8")
        return 0 if "agree: yes" in report else 1
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
