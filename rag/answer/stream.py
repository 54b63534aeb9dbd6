"""The answer path: question -> (rewrite) -> retrieve -> gate -> generate -> verify -> finish.

This is the one place a question is answered. The CLI, ``POST /api/ask`` and its
streaming twin, both modes of ``/v1/chat/completions`` and the eval harness all open an
``AnswerStream`` here and consume its events; none of them repeats a step.

The stream's events are, in order:

- ``Preview`` (optional): when a language model will answer, the gate's evidence (the
  quoted span and its citation, verified like any answer) is sent at once, because the
  model needs seconds before its first word. It is a preview, not the answer.
- ``Delta``: verified answer text (``rag.answer.grounding``). The deltas join to exactly the
  final answer's text, abstentions included, and every ``[n]`` refers to the final
  citations.
- ``Done``: the final answer, authoritative, with citations, timings and token usage.

Validation, the follow-up rewrite and retrieval run when the stream is opened, so bad
input fails before a client has received anything; the gate and the generation run as
the stream is read, and closing the stream stops the generation.
"""

from __future__ import annotations

import collections.abc
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date

from rag.answer.analysis import Limits, analyse
from rag.answer.conversation import ChatFunction, Turn
from rag.answer.evidence import Thresholds, choose, unquotable
from rag.answer.generators import Call, ChatGenerator, Generator, Generators
from rag.answer.generators.extractive import ExtractiveGenerator, evidence_draft
from rag.answer.grounding import Verifier
from rag.answer.retrieval import Pipeline, Retrieval
from rag.config import MAX_TOP_K, Settings
from rag.errors import InvalidQuestion
from rag.index.store import Where
from rag.types import Answer, GenerationRequest, QuestionInfo

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Query:
    """One question and how to answer it (``None``: the configured default).

    ``depth`` passages are retrieved (at least ``top_k``) and reported on the stream, for
    retrieval metrics; only the best ``top_k`` reach the gate and the generator.
    """

    question: str
    history: tuple[Turn, ...] = ()
    top_k: int | None = None
    generator: str | None = None
    retriever: str | None = None
    depth: int = 0
    preview: bool = True
    as_of: date | None = None  # the day relative dates (去年4月) are counted from; None: today
    where: Where | None = None  # only these documents or publication days


@dataclass(frozen=True)
class Preview:
    """The gate's evidence as a verified extractive answer, shown until the answer arrives."""

    answer: Answer


@dataclass(frozen=True)
class Delta:
    """A piece of verified answer text."""

    text: str


@dataclass(frozen=True)
class Done:
    """The final answer: its text is exactly the deltas joined."""

    answer: Answer


AnswerEvent = Preview | Delta | Done
# The events as they stream: a generator object, so that ``close()`` stops the generation.
EventStream = collections.abc.Generator[AnswerEvent, None, None]


class AnswerStream:
    """One question's answer as events (read once). ``answer()`` reads what is left and
    returns the final answer; ``close()`` and ``cancel()`` stop the generation."""

    def __init__(
        self,
        question: str,
        retrieval: Retrieval,
        generator: str,
        events: EventStream,
        cancelled: threading.Event | None = None,
    ) -> None:
        self.question = question  # as searched, after the conversation
        self.retrieval = retrieval  # every passage retrieved, to the query's depth
        self.generator = generator
        self._events = self._watched(events)
        self._cancelled = cancelled or threading.Event()
        self._on_close: list[Callable[[], None]] = []
        self._on_answer: list[Callable[[Answer], None]] = []

    def _watched(self, events: EventStream) -> EventStream:
        """The events, telling ``on_answer`` callbacks the final answer as it passes."""
        try:
            for event in events:
                if isinstance(event, Done):
                    for callback in self._on_answer:
                        try:
                            callback(event.answer)
                        except Exception:  # a watcher (metrics) must not cost the client its answer
                            logger.exception("an answer watcher failed")
                yield event
        finally:
            events.close()

    def on_answer(self, callback: Callable[[Answer], None]) -> None:
        """Call ``callback`` with the final answer when it is reached (not when the stream is cut)."""
        self._on_answer.append(callback)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the stream is closed (a slot the answer held, say)."""
        self._on_close.append(callback)

    def __iter__(self) -> Iterator[AnswerEvent]:
        return self._events

    def close(self) -> None:
        """Stop the generation (from the thread that reads the stream)."""
        self._events.close()
        while self._on_close:
            self._on_close.pop()()

    def cancel(self) -> None:
        """Stop the generation from any thread: the stream ends at the next piece of the draft,
        or now when nobody is reading it (a client that went away)."""
        self._cancelled.set()
        with contextlib.suppress(ValueError):  # being read in another thread: the flag stops it there
            self.close()

    def answer(self) -> Answer:
        """The final answer (reading the rest of the stream)."""
        try:
            return final(self._events)
        finally:
            self.close()


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


class Answerer:
    """Opens answer streams over one pipeline (one index snapshot) with the process's generators."""

    def __init__(self, pipeline: Pipeline, generators: Generators, settings: Settings) -> None:
        self._pipeline = pipeline
        self._generators = generators
        self._settings = settings
        self._thresholds = Thresholds.from_settings(settings)
        self._limits = Limits.from_settings(settings)

    def ask(self, query: Query) -> Answer:
        """The whole answer (the stream, read to its end)."""
        return self.open(query).answer()

    def open(self, query: Query) -> AnswerStream:
        """Analyse (a follow-up made standalone) and retrieve now; gate and generate as the stream is read."""
        started = time.perf_counter()
        settings = self._settings
        top_k = settings.top_k if query.top_k is None else query.top_k
        if not 1 <= top_k <= MAX_TOP_K:
            raise InvalidQuestion(f"top_k must be between 1 and {MAX_TOP_K}, not {top_k}")
        generator = self._generators.get(query.generator)
        call = Call()
        timings: dict[str, float] = {}
        info = analyse(query.question, query.as_of, query.history, _chat(generator, call), self._limits)
        if query.history and self._limits.history_turns:
            timings["rewrite_ms"] = _ms(started)
        retrieval = self._pipeline.retrieve(info, top_k, query.retriever, query.depth, query.where)
        timings.update({k: round(v, 2) for k, v in retrieval.timings_ms.items()})
        request = retrieval.request
        if not settings.entity_binding:
            request = replace(request, names=())
        generator = drafter(request, generator)
        cancelled = threading.Event()
        events = respond(request, generator, self._thresholds, call, query.preview, timings, started, cancelled)
        return AnswerStream(info.text, retrieval, generator.name, events, cancelled)


def _chat(generator: Generator, call: Call) -> ChatFunction | None:
    """The generator's language model as a chat function for follow-up rewriting (counted on ``call``)."""
    if not isinstance(generator, ChatGenerator):
        return None
    return lambda messages: generator.chat(messages, call)


def _finished(answer: Answer, timings: dict[str, float], started: float, call: Call) -> Answer:
    timings = {**timings, "total_ms": _ms(started)}
    warnings = (*call.warnings, *answer.warnings)
    return replace(answer, timings_ms=timings, usage=call.usage, warnings=warnings)


def respond(
    request: GenerationRequest,
    generator: Generator,
    thresholds: Thresholds,
    call: Call | None = None,
    preview: bool = False,
    timings: dict[str, float] | None = None,
    started: float | None = None,
    cancelled: threading.Event | None = None,
) -> EventStream:
    """The answer path after retrieval: gate, (preview,) generate, verify, finish.

    ``timings`` so far and the time the question ``started`` are carried into the final
    answer's timings. When the gate finds no evidence, no generator is asked. Once
    ``cancelled`` is set, the stream ends at the next piece of the draft.
    """
    started = time.perf_counter() if started is None else started
    timings = dict(timings or {})
    call = call or Call()
    choice = choose(request, thresholds)
    if isinstance(choice, str):
        yield from _abstention(choice, timings, started, call)
        return
    request = replace(request, evidence=choice)
    generator = drafter(request, generator)
    if generator.name == "extractive" and (reason := unquotable(request, choice)):
        yield from _abstention(reason, timings, started, call)
        return
    preview = preview and generator.name != "extractive"
    yield from _generated(request, generator, call, preview, timings, started, cancelled or threading.Event())


def drafter(request: GenerationRequest, generator: Generator) -> Generator:
    """Who writes the draft: ``generator``, unless the answer is computed (a comparison of
    events, rag.answer.timeline), which no model writes."""
    computed = request.comparison is not None or (request.evidence is not None and request.evidence.draft)
    return ExtractiveGenerator() if computed else generator


def final(events: Iterator[AnswerEvent]) -> Answer:
    """The final answer of an event stream (reading it to the end)."""
    for event in events:
        if isinstance(event, Done):
            return event.answer
    raise RuntimeError("the answer stream ended without a final answer")


def _abstention(reason: str, timings: dict[str, float], started: float, call: Call) -> EventStream:
    """The gate found no evidence: the abstention, and no generator is asked."""
    verifier = Verifier(GenerationRequest(QuestionInfo(""), (), ()))
    for text in verifier.abstain(reason):
        timings["first_token_ms"] = _ms(started)
        yield Delta(text)
    yield Done(_finished(verifier.answer(), timings, started, call))


def verified(request: GenerationRequest, draft: Sequence[str], shown: int | None = None) -> Answer:
    """A whole draft, verified as the stream would verify it."""
    verifier = Verifier(request, shown)
    for piece in draft:
        verifier.feed(piece)
    verifier.end()
    return verifier.answer()


def _fallback(request: GenerationRequest, shown: int | None) -> str:
    """For an English question, the gate's span (``386 名 [1]``), which the verifier releases
    instead of a model's Chinese sentence, when it may be the answer and the model saw its passage."""
    choice = request.evidence
    if request.info.language != "en" or choice is None or unquotable(request, choice):
        return ""
    if choice.sentence.passage_rank >= (shown or len(request.passages)):
        return ""
    return evidence_draft(request)


def _generated(
    request: GenerationRequest,
    generator: Generator,
    call: Call,
    preview: bool,
    timings: dict[str, float],
    started: float,
    cancelled: threading.Event,
) -> EventStream:
    if preview:
        evidence = verified(request, [evidence_draft(request)])
        if not evidence.abstained:
            timings["preview_ms"] = _ms(started)
            yield Preview(evidence)
    generating = time.perf_counter()
    pieces = generator.stream(request, call)
    verifier: Verifier | None = None
    try:
        for piece in pieces:
            if cancelled.is_set():
                return  # nobody is reading any more: stop the model (finally)
            if verifier is None:
                timings["model_first_token_ms"] = _ms(started)
                # The generator has said what it showed.
                verifier = Verifier(request, call.shown, _fallback(request, call.shown))
            for text in verifier.feed(piece):
                timings.setdefault("first_token_ms", _ms(started))
                yield Delta(text)
            if verifier.stopped:
                break  # a withheld unit ends the draft: stop the model
        verifier = verifier or Verifier(request, call.shown)
        for text in verifier.end():
            timings.setdefault("first_token_ms", _ms(started))
            yield Delta(text)
    finally:
        pieces.close()
    timings["generate_ms"] = _ms(generating)
    yield Done(_finished(verifier.answer(), timings, started, call))
