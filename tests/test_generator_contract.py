"""The grounding contract, written once and run against every generator through the answer path.

Backends: the scripted fake, extractive, llama-cpp with a fake model object, openai over
httpx.MockTransport, and the fallback wrapper (an unreachable server, then the local model).
The real local model runs the same checks in tests/test_llm_real.py (slow).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rag.answer.evidence import Thresholds
from rag.answer.generators import Generator
from rag.answer.generators.extractive import ExtractiveGenerator
from rag.answer.generators.fake import ScriptedGenerator
from rag.answer.generators.fallback import FallbackGenerator
from rag.answer.generators.openai_compat import Backend, OpenAICompatGenerator
from rag.answer.stream import AnswerEvent, Delta, Done, Preview, final, respond
from rag.lang import ABSTAIN_TEXT
from rag.types import Answer, GenerationRequest
from tests.fakes import FENGHUANG_TITLE, FakeLlama, RecordingStream, llama_with, sse_chunks, two_passages, unreachable

THRESHOLDS = Thresholds(min_sentence=0.5, min_margin=0.05)
QUESTION = "凤凰县为多少名农民工追回了拖欠工资？"
# A grounded draft of two units that cites the wrong passage first, and an invented one.
GOOD = ["凤凰县为", "386", "名农民工追回了工资[1]。", "涉及案件 32 起[2]。"]
INVENTED = ["长沙市的人口为 ", "9.4", " 百万人[1]。"]


@dataclass
class Backend_:
    """A generator under test, and how to tell how far its model got."""

    generator: Generator
    model_calls: Callable[[], int]
    stopped_early: Callable[[], bool]
    scripted: bool = True
    notes: dict[str, Any] = field(default_factory=dict)


def _scripted(draft: list[str]) -> Backend_:
    fake = ScriptedGenerator(draft)
    return Backend_(fake, lambda: len(fake.requests), lambda: fake.closed_early)


def _extractive(_: list[str]) -> Backend_:
    return Backend_(ExtractiveGenerator(), lambda: 1, lambda: True, scripted=False)


def _llama(draft: list[str]) -> Backend_:
    fake = FakeLlama(draft)
    return Backend_(llama_with(fake), lambda: len(fake.prompts), lambda: fake.closed and fake.sent < len(draft))


def _openai(draft: list[str]) -> Backend_:
    bodies: list[RecordingStream] = []

    def handler(_: httpx.Request) -> httpx.Response:
        bodies.append(RecordingStream(sse_chunks(draft)))
        return httpx.Response(200, stream=bodies[-1])

    generator = OpenAICompatGenerator(Backend("http://llm.test/v1", "m"), transport=httpx.MockTransport(handler))
    return Backend_(
        generator, lambda: len(bodies), lambda: bool(bodies) and bodies[-1].closed and bodies[-1].read <= len(draft)
    )


def _fallback(draft: list[str]) -> Backend_:
    fake = FakeLlama(draft)
    server = OpenAICompatGenerator(
        Backend("http://llm.test/v1", "m", retries=0), transport=httpx.MockTransport(unreachable)
    )
    generator = FallbackGenerator([server, llama_with(fake)])
    return Backend_(generator, lambda: len(fake.prompts), lambda: fake.closed and fake.sent < len(draft))


ALL = {"scripted": _scripted, "extractive": _extractive, "llama-cpp": _llama, "openai": _openai, "fallback": _fallback}
SCRIPTED = {name: make for name, make in ALL.items() if name != "extractive"}


def _events(backend: Backend_, request: GenerationRequest, preview: bool = True) -> list[AnswerEvent]:
    return list(respond(request, backend.generator, THRESHOLDS, preview=preview))


def _final(events: list[AnswerEvent]) -> Answer:
    return final(iter(events))


def _streamed(events: list[AnswerEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


def markers_agree(text: str, answer: Answer) -> None:
    """Every [n] points at a citation, and every citation is pointed at."""
    used = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    assert used == set(range(1, len(answer.citations) + 1)), (text, [c.title for c in answer.citations])


@pytest.mark.parametrize("make", ALL.values(), ids=ALL.keys())
def test_a_weak_request_abstains_without_asking_the_model(make: Callable[[list[str]], Backend_]) -> None:
    backend = make(GOOD)
    events = _events(backend, two_passages("北京的人口是多少？", background=0.85))
    answer = _final(events)
    assert answer.abstained and answer.text == ABSTAIN_TEXT and "stands out" in answer.abstain_reason
    assert _streamed(events) == ABSTAIN_TEXT and not any(isinstance(e, Preview) for e in events)
    if backend.scripted:
        assert backend.model_calls() == 0


@pytest.mark.parametrize("make", ALL.values(), ids=ALL.keys())
def test_the_concatenated_stream_is_the_final_answer(make: Callable[[list[str]], Backend_]) -> None:
    events = _events(make(GOOD), two_passages(QUESTION))
    answer = _final(events)
    assert not answer.abstained and "386" in answer.text
    assert _streamed(events) == answer.text
    assert isinstance(events[-1], Done) and sum(isinstance(e, Done) for e in events) == 1


@pytest.mark.parametrize("make", ALL.values(), ids=ALL.keys())
def test_citations_and_markers_agree_in_every_piece(make: Callable[[list[str]], Backend_]) -> None:
    events = _events(make(GOOD), two_passages(QUESTION))
    answer = _final(events)
    markers_agree(answer.text, answer)
    assert answer.citations[0].title == FENGHUANG_TITLE  # [1] is the passage holding 386
    for event in events:
        if isinstance(event, Delta):
            for n in re.findall(r"\[(\d+)\]", event.text):
                assert 1 <= int(n) <= len(answer.citations)


@pytest.mark.parametrize("make", SCRIPTED.values(), ids=SCRIPTED.keys())
def test_a_withheld_draft_appears_nowhere(make: Callable[[list[str]], Backend_]) -> None:
    events = _events(make(INVENTED), two_passages(QUESTION))
    answer = _final(events)
    assert answer.abstained and answer.text == ABSTAIN_TEXT and "1 figure that appears in none" in answer.abstain_reason
    assert _streamed(events) == ABSTAIN_TEXT
    shown = [e.answer.text for e in events if isinstance(e, Preview | Done)] + [_streamed(events)]
    assert not any("9.4" in text or "长沙" in text for text in [*shown, answer.abstain_reason])


@pytest.mark.parametrize("make", SCRIPTED.values(), ids=SCRIPTED.keys())
def test_an_invented_later_sentence_stops_the_model(make: Callable[[list[str]], Backend_]) -> None:
    backend = make(["为 386 名农民工追回工资[2]。", "另有 999 人受益[2]。", "此外", "还有", "更多", "内容。"])
    events = _events(backend, two_passages(QUESTION))
    answer = _final(events)
    assert answer.text == _streamed(events) == "为 386 名农民工追回工资[1]。" and "withheld" in answer.warnings[-1]
    assert "999" not in str(answer)
    assert backend.stopped_early()


@pytest.mark.parametrize("make", ALL.values(), ids=ALL.keys())
def test_closing_the_stream_stops_generation(make: Callable[[list[str]], Backend_]) -> None:
    draft = ["为 386 名农民工追回工资[2]。", "涉及案件 32 起[2]。", "另", "有", "其", "他。"]
    backend = make(draft)
    stream = respond(two_passages(QUESTION), backend.generator, THRESHOLDS, preview=False)
    first = next(stream)
    assert isinstance(first, Delta) and "386" in first.text
    stream.close()
    assert backend.stopped_early()


@pytest.mark.parametrize("make", ALL.values(), ids=ALL.keys())
def test_a_model_answer_is_previewed_by_its_verified_evidence(make: Callable[[list[str]], Backend_]) -> None:
    backend = make(GOOD)
    events = _events(backend, two_passages(QUESTION))
    previews = [e for e in events if isinstance(e, Preview)]
    if isinstance(backend.generator, ExtractiveGenerator):
        assert not previews  # the answer itself comes at once
        return
    assert isinstance(events[0], Preview) and len(previews) == 1
    preview = previews[0].answer
    assert preview.text == "386 名 [1]" and preview.citations[0].title == FENGHUANG_TITLE
    assert _streamed(events) == _final(events).text  # the preview is not part of the answer


def test_the_fallback_says_which_backend_answered() -> None:
    answer = _final(_events(_fallback(GOOD), two_passages(QUESTION)))
    assert not answer.abstained and "cannot reach" in answer.warnings[0] and "llama-cpp" in answer.warnings[0]
