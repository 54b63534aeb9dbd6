"""An ordinary session logs what a reader wants and nothing to worry about (issue 29): a real
server at the default log level, five questions, an upload (a text file and a PDF), the page,
and Ctrl-C. No line at WARNING or above, no library narrating its work at INFO, and each
access line names the route it matched."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx

from api.process import server_process
from rag.config import Settings
from tests.conftest import server_env
from tests.test_loaders import _pdf_bytes

QUESTIONS = [
    "凤凰县为多少名农民工追回了拖欠工资？",
    "资兴市新建了几个研学基地？",
    "How many workers did Fenghuang recover wages for?",
    "长沙的人口是多少？",  # an abstention is not a warning
    "凤凰县纪委做了什么？",
]


def test_an_ordinary_session_logs_no_warning_and_no_library_chatter(
    seed_settings: Settings, seed_pipeline: object, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    env = server_env(seed_settings, tmp_path)
    with server_process(env, log, log_level="info") as (url, server):
        with httpx.Client(base_url=url, timeout=120) as http:
            assert http.get("/").status_code == 200
            assert http.get("/static/app.js").status_code == 200
            for question in QUESTIONS:
                assert http.post("/api/ask", json={"question": question}).status_code == 200
            files = {"file": ("notes.txt", "湘江新区今年新建了三座桥。".encode(), "text/plain")}
            assert http.post("/api/documents", files=files).status_code in (200, 201)
            report = {
                "file": ("report.pdf", _pdf_bytes("Quarterly report: revenue rose 12 percent."), "application/pdf")
            }
            assert http.post("/api/documents", files=report).status_code in (200, 201)
            assert http.get("/api/index/status").status_code == 200
        server.send_signal(signal.SIGINT)  # Ctrl-C
        assert server.wait(timeout=60) == 0
    lines = log.read_text(errors="replace").splitlines()
    loud = [line for line in lines if re.search(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|[Ww]arning:", line)]
    assert not loud, loud
    # INFO lines come from the service and its server only, not from libraries at work
    sources = {m[1] for line in lines if (m := re.search(r" INFO (\S+) \[", line))}
    assert sources and all(source.startswith(("rag.", "api.", "uvicorn.")) for source in sources), sources
    access = [line for line in lines if " rag.access " in line]
    assert len(access) >= 9 and not [line for line in access if "(route unmatched)" in line]
