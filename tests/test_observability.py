"""Request ids, Prometheus metrics, structured logs and health probes."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.observability import JsonFormatter, RequestIdFilter, abstain_kind, request_id
from rag.answer.retrieval import Pipeline
from rag.config import Settings
from tests.conftest import running_server, server_env


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def client(seed_settings: Settings, seed_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(seed_settings, seed_pipeline), base_url="http://localhost") as test_client:
        yield test_client


def test_every_response_and_error_carries_a_request_id(client: TestClient) -> None:
    made = client.get("/api/health")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    kept = client.get("/api/health", headers={"X-Request-ID": "lb-7f3a.42"})
    assert kept.headers["x-request-id"] == "lb-7f3a.42"
    replaced = client.get("/api/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    failed = client.post("/api/ask", json={"question": " "})
    assert failed.status_code == 422 and failed.json()["request_id"] == failed.headers["x-request-id"]
    v1 = client.post("/v1/chat/completions", json={"model": "extractive", "messages": []})
    assert v1.status_code == 422 and v1.json()["error"]["request_id"] == v1.headers["x-request-id"]


def test_metrics_count_requests_answers_and_stages(client: TestClient) -> None:
    for question in ("凤凰县为多少名农民工追回了拖欠工资？", "华为公司今年的营收是多少？"):
        assert client.post("/api/ask", json={"question": question, "generator": "extractive"}).status_code == 200
    client.post("/api/ask", json={"question": ""})
    text = client.get("/metrics").text
    assert _metric(text, "rag_http_requests_total", route="/api/ask", status="200") == 2
    assert _metric(text, "rag_http_requests_total", route="/api/ask", status="422") == 1
    assert _metric(text, "rag_http_request_seconds_count", route="/api/ask") == 3
    assert _metric(text, "rag_answers_total", outcome="answered", generator="extractive") == 1
    assert _metric(text, "rag_answers_total", outcome="abstained") == 1
    for stage in ("embed", "search", "total"):
        assert _metric(text, "rag_answer_stage_seconds_count", stage=stage) == 2
    assert _metric(text, "rag_index_documents") == 1 and _metric(text, "rag_index_chunks") > 10
    assert _metric(text, "rag_index_ready") == 1 and _metric(text, "rag_llm_answers_in_flight") == 0
    assert _metric(text, "process_resident_memory_bytes") > 100e6
    # a document id in the path is not a label: the route's template is
    client.get("/api/documents/no/such.txt")
    assert _metric(client.get("/metrics").text, "rag_http_requests_total", route="/api/documents/{doc_id:path}") >= 1
    # the page's files are counted under their mount, not as unmatched
    assert client.get("/static/app.js").status_code == 200
    text = client.get("/metrics").text
    assert _metric(text, "rag_http_requests_total", route="/static/{path}", status="200") == 1
    assert _metric(text, "rag_http_requests_total", route="unmatched", status="200") == 0


def test_live_and_ready_probes(
    client: TestClient, seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    assert client.get("/api/health/live").json() == {"status": "ok"}
    assert client.get("/api/health/ready").status_code == 200
    keyed = seed_settings.model_copy(update={"api_keys": "k1"})
    with TestClient(create_app(keyed, seed_pipeline), base_url="http://localhost") as with_keys:
        # probes need no key (a load balancer has none); metrics do
        assert with_keys.get("/api/health/live").status_code == 200
        assert with_keys.get("/api/health/ready").status_code == 200
        assert with_keys.get("/metrics").status_code == 401
        assert with_keys.get("/metrics", headers={"Authorization": "Bearer k1"}).status_code == 200
    empty = seed_settings.model_copy(update={"index_dir": tmp_path / "none", "documents_dir": tmp_path / "docs"})
    with TestClient(create_app(empty), base_url="http://localhost") as not_ready:
        assert not_ready.get("/api/health/live").status_code == 200
        refused = not_ready.get("/api/health/ready")
        assert refused.status_code == 503 and "rag index" in refused.json()["detail"]


def test_abstention_reasons_become_bounded_labels() -> None:
    assert abstain_kind("the documents never mention the name asked about: Huawei") == "the documents never"
    assert abstain_kind("no good sentence gives a figure in 只") == "no good sentence"
    assert abstain_kind("No passage reports the opening of the Zhuzhou bridge") == "no passage reports"
    assert abstain_kind("") == "other"


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("rag.test", logging.WARNING, __file__, 1, "index %s failed", ("v-1",), None)
    token = request_id.set("abc123")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abc123" and line["message"] == "index v-1 failed" and line["level"] == "warning"


def test_a_real_server_exposes_metrics_and_logs_request_ids(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    env = server_env(seed_settings, tmp_path, RAG_LOG_FORMAT="json")
    log = tmp_path / "server.log"
    with running_server(env, log, log_level="info") as base:
        for _ in range(3):
            asked = httpx.post(f"{base}/api/ask", json={"question": "凤凰县为多少名农民工追回了拖欠工资？"}, timeout=30)
            assert asked.status_code == 200
        failed = httpx.post(f"{base}/api/ask", json={"question": ""}, timeout=30)
        assert failed.status_code == 422
        text = httpx.get(f"{base}/metrics", timeout=30).text
        assert _metric(text, "rag_http_requests_total", route="/api/ask", status="200") == 3
        assert _metric(text, "rag_answers_total", outcome="answered") == 3
        assert _metric(text, "rag_answer_stage_seconds_count", stage="total") == 3
        assert _metric(text, "process_resident_memory_bytes") > 100e6
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    mine = [line for line in lines if line["request_id"] == failed.headers["x-request-id"]]
    assert mine and "422" in mine[-1]["message"] and mine[-1]["logger"] == "rag.access"


def test_the_grafana_dashboard_reads_only_metrics_the_service_exposes(client: TestClient) -> None:
    from tests.conftest import ROOT

    client.post("/api/ask", json={"question": "凤凰县为多少名农民工追回了拖欠工资？"})
    exposed = {
        line.split("{")[0].split(" ")[0] for line in client.get("/metrics").text.splitlines() if line[:1].isalpha()
    }
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "rag-news.json").read_text(encoding="utf-8"))
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:rag|process)_[a-z_]+)\b", target["expr"])
    }
    assert used and used <= exposed, used - exposed


def test_sigterm_lets_a_streamed_llm_answer_finish(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    """Through real processes: the server is told to stop while the model writes; the answer
    still streams to its end, then the server exits."""
    import signal

    from api.process import server_process
    from tests.fakes import fake_llm_server

    reply = " ".join(["Fenghuang recovered wages for 386 workers [1]."] * 12)  # about 4 s of words
    with fake_llm_server({"Fenghuang": reply}, piece_s=0.05) as llm:
        env = {
            "RAG_INDEX_DIR": str(seed_settings.index_dir), "RAG_CACHE_DIR": str(seed_settings.cache_dir),
            "RAG_GENERATOR": "openai", "RAG_OPENAI_BASE_URL": llm, "RAG_GENERATOR_FALLBACK": "false",
        }  # fmt: skip
        with server_process(env, tmp_path / "server.log") as (base, server):
            lines: list[str] = []
            signalled_at = 0
            question = {"question": "How many workers did Fenghuang recover wages for?"}
            with httpx.stream("POST", f"{base}/api/ask/stream", json=question, timeout=60) as response:
                for line in response.iter_lines():
                    lines.append(line)
                    if line.startswith("event: token") and not signalled_at:
                        server.send_signal(signal.SIGTERM)  # mid-answer
                        signalled_at = len(lines)
            # uvicorn raises the signal again once it has shut down, so the status says SIGTERM
            assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    assert signalled_at and lines[signalled_at:].count("event: token") >= 3  # it kept writing after the signal
    done = lines.index("event: done")
    answer = json.loads(lines[done + 1].removeprefix("data: "))
    assert not answer["abstained"] and "386" in answer["answer"]


def _index_bridges(seed_settings: Settings, index: Path, embedder: object) -> None:
    """Add an article about new bridges to ``index`` from this process, as `rag index` beside a server would."""
    from rag.ingest.loaders import parse_bytes
    from rag.library import index_documents

    bridges = "# 凤凰新桥\n\n凤凰县今年新建了 3 座跨江大桥，总投资 2.4 亿元。"
    document = parse_bytes(bridges.encode(), "bridges.md", "/elsewhere/bridges.md")
    index_documents(seed_settings.model_copy(update={"index_dir": index}), [document], embedder)  # type: ignore[arg-type]


def test_a_server_serves_an_index_another_process_wrote(
    seed_settings: Settings, seed_pipeline: Pipeline, real_embedder: object, tmp_path: Path
) -> None:
    import time

    env = server_env(seed_settings, tmp_path, RAG_INDEX_POLL_S="0.5")
    with running_server(env, tmp_path / "server.log") as base:
        _index_bridges(seed_settings, tmp_path / "index", real_embedder)
        written = time.monotonic()
        while "bridges.md" not in httpx.get(f"{base}/api/documents", timeout=10).text:
            assert time.monotonic() - written < 10, "the server did not pick up the new version"
            time.sleep(0.2)
        answer = httpx.post(f"{base}/api/ask", json={"question": "凤凰县今年新建了几座跨江大桥？"}, timeout=30).json()
        assert "3" in answer["answer"] and answer["citations"][0]["doc_id"] == "bridges.md"


def test_two_workers_both_serve_an_index_another_process_wrote(
    seed_settings: Settings, seed_pipeline: Pipeline, real_embedder: object, tmp_path: Path
) -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    from api.process import server_process

    env = server_env(seed_settings, tmp_path, RAG_INDEX_POLL_S="0.5")
    with server_process(env, tmp_path / "server.log", args=("--workers", "2")) as (base, _):

        def worker_pids(within_s: float = 30.0) -> set[float]:
            """The workers that answer scrapes (each reports its own process id), sent 16 at a
            time on new connections: a worker busy with some leaves the next to the other. Until
            two have answered, or the time is up."""
            seen: set[float] = set()
            deadline = time.monotonic() + within_s
            with ThreadPoolExecutor(16) as pool:
                while len(seen) < 2 and time.monotonic() < deadline:
                    pages = pool.map(lambda _: httpx.get(f"{base}/metrics", timeout=10).text, range(48))
                    seen.update(_metric(page, "rag_worker_pid") for page in pages)
            return seen

        assert len(worker_pids()) == 2
        for _ in range(6):
            httpx.post(f"{base}/api/ask", json={"question": "凤凰县为多少名农民工追回了拖欠工资？"}, timeout=30)
        for _ in range(10):  # whichever worker answers the scrape, the counts are both workers'
            text = httpx.get(f"{base}/metrics", timeout=10).text
            assert _metric(text, "rag_http_requests_total", route="/api/ask", status="200") == 6
            assert _metric(text, "rag_answers_total", outcome="answered") == 6
        _index_bridges(seed_settings, tmp_path / "index", real_embedder)

        def every_worker_serves(documents: int) -> None:
            """Scrapes until 20 in a row (whichever worker answers) report that many documents."""
            deadline, streak = time.monotonic() + 20, 0
            while streak < 20:
                assert time.monotonic() < deadline, "a worker still serves an older index version"
                seen = _metric(httpx.get(f"{base}/metrics", timeout=10).text, "rag_index_documents")
                streak = streak + 1 if seen == documents else 0

        every_worker_serves(2)
        # an upload through one worker is served by both
        created = httpx.post(
            f"{base}/api/documents", json={"name": "z.md", "text": "资兴市新建了 5 个研学基地。"}, timeout=60
        )
        assert created.status_code == 201, created.text
        every_worker_serves(3)
