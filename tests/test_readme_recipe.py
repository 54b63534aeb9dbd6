"""The README's "Your own documents" recipe, run as written (issue 29): its commands, read from
the README itself, on a folder of a user's own files (a .txt, a .docx with a table, a text PDF
and a .png scan), then cited answers from the command line, the page's endpoint and /v1 with
the ``openai`` package."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.process import server_process
from tests.clients import sse_events
from tests.conftest import ROOT
from tests.test_loaders import _pdf_bytes
from tests.test_own_documents import ARTICLE, economy_docx

RAG = Path(sys.executable).parent / "rag"
SCAN_LINES = ("湘江新区三座大桥通车", "本报讯 湘江新区今年新建的三座大桥昨日通车，总投资18.6亿元。")


def recipe() -> list[str]:
    """The commands of the README's "Your own documents" section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Your own documents", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the section has no bash block"
    return [line.split("#", 1)[0].strip() for line in block[1].splitlines() if line.strip()]


def _scan(path: Path) -> None:
    """A photographed clipping: a headline and a paragraph, set in a Chinese font."""
    from PIL import Image, ImageDraw, ImageFont

    from eval.scans import FontsMissing, font_file

    try:
        face = str(font_file("NotoSansCJK-Bold.ttc"))
    except FontsMissing as exc:
        if os.environ.get("RAG_REQUIRE_BROWSER"):
            raise
        pytest.skip(str(exc))
    image = Image.new("RGB", (1800, 420), "white")
    draw = ImageDraw.Draw(image)
    draw.text((60, 50), SCAN_LINES[0], fill="black", font=ImageFont.truetype(face, 64, index=2))
    draw.text((60, 220), SCAN_LINES[1], fill="black", font=ImageFont.truetype(face, 40, index=2))
    image.save(path)


def _run(command: str, home: Path, env: dict[str, str], question: str = "") -> str:
    """One README command, ``~`` and ``.venv/bin/rag`` as a shell would read them here."""
    words = shlex.split(command.replace("~", str(home)))
    assert words[0] == ".venv/bin/rag", command
    words[0] = str(RAG)
    words = [question if w == "a question your documents answer" else w for w in words]
    done = subprocess.run(words, env={**os.environ, **env}, capture_output=True, text=True, timeout=600, cwd=home)
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr
    return done.stdout


def test_the_readme_recipe_indexes_my_folder_and_answers_with_citations(
    tmp_path: Path, model_cache: Path, model_dir: Path
) -> None:
    home = tmp_path / "home"
    docs = home / "my-docs"
    docs.mkdir(parents=True)
    (docs / "juzizhou.txt").write_text(ARTICLE, encoding="utf-8")
    economy_docx(docs / "economy.docx")
    (docs / "library.pdf").write_bytes(
        _pdf_bytes("Riverside library quarterly report. The library had 48,000 visits in the third quarter.")
    )
    _scan(docs / "bridges.png")
    env = {"HOME": str(home), "RAG_CACHE_DIR": str(model_cache), "RAG_GENERATOR": "extractive"}
    env |= {"RAG_DOCUMENTS_DIR": str(home / "uploads")}
    index, ask, serve = recipe()
    assert index.startswith(".venv/bin/rag index") and serve.startswith(".venv/bin/rag serve")

    out = _run(index, home, env)
    assert "4 added" in out, out
    assert (home / "my-index").is_dir() and not (ROOT / "index" / "my-docs").exists()

    # The command line: the figure, and the file it comes from.
    out = _run(ask, home, env, "五一假期橘子洲景区累计接待游客多少人次？")
    assert "15.6万人次" in out and "juzizhou.txt" in out, out
    out = _run(ask + " --json", home, env, "How many visits did the Riverside library have in the third quarter?")
    answer = json.loads(out)
    assert "48,000" in answer["answer"] and answer["citations"][0]["doc_id"].endswith("library.pdf"), answer

    serve_args = tuple(shlex.split(serve.replace("~", str(home))))[2:]
    with server_process(env, tmp_path / "server.log", args=serve_args) as (url, _):
        with httpx.Client(base_url=url, timeout=120) as http:
            # The page, and the streamed answer it shows.
            assert "<html" in http.get("/").text.lower()
            streamed = http.post("/api/ask/stream", json={"question": "株洲前三季度地区生产总值增速是多少？"})
            done = [data for event, data in sse_events(streamed.text) if event == "done"]
            assert done and "6.4%" in done[0]["answer"], streamed.text[-500:]
            assert done[0]["citations"][0]["doc_id"].endswith("economy.docx")
        # /v1 with the openai package, as the README shows it: the scan's figure, cited.
        from openai import OpenAI

        client = OpenAI(base_url=f"{url}/v1", api_key="unused")
        question = {"role": "user", "content": "湘江新区三座大桥的总投资是多少？"}
        reply = client.chat.completions.create(model="auto", messages=[question])  # type: ignore[list-item]
        assert "18.6亿元" in (reply.choices[0].message.content or "")
        citations = reply.model_extra["citations"] if reply.model_extra else []
        assert citations and citations[0]["doc_id"].endswith("bridges.png"), citations
