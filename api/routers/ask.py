"""POST /api/ask (whole answer) and /api/ask/stream (Server-Sent Events)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import PipelineDep, StateDep
from api.errors import status_for
from api.schemas import AskRequest, AskResponse, ErrorBody
from rag.conversation import Turn, standalone_question
from rag.errors import RagError
from rag.generators import Generator, chat_function

router = APIRouter(tags=["questions"])

_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (415, 422, 503)}


@router.post("/api/ask", response_model=AskResponse, responses=_ERRORS)
def ask(body: AskRequest, state: StateDep, pipeline: PipelineDep) -> AskResponse:
    """Answer a question from the indexed documents, with citations."""
    settings = state.settings
    generator = state.generator(body.generator)
    question, rewrite_ms = standalone(body, generator, settings.max_question_chars)
    answer = pipeline.ask(question, body.top_k or settings.top_k, generator, body.retriever)
    timings = with_rewrite(answer.timings_ms, rewrite_ms)
    return AskResponse.from_answer(answer).model_copy(update={"standalone_question": question, "timings_ms": timings})


def standalone(body: AskRequest, generator: Generator, max_chars: int) -> tuple[str, float]:
    """The question made standalone from the request's history (by the generator's language
    model when it has one), and the milliseconds that took."""
    if not body.history:
        return body.question.strip(), 0.0
    started = time.perf_counter()
    turns = [Turn(m.role, m.content) for m in body.history]
    question = standalone_question(body.question, turns, chat_function(generator), max_chars)
    return question, (time.perf_counter() - started) * 1000


def with_rewrite(timings: dict[str, float], rewrite_ms: float) -> dict[str, float]:
    """Timings with the follow-up rewrite added (to the total too), when there was one."""
    if not rewrite_ms:
        return timings
    return {**timings, "rewrite_ms": round(rewrite_ms, 2), "total_ms": round(timings["total_ms"] + rewrite_ms, 2)}


def _event(name: str, payload: object) -> str:
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


@router.post(
    "/api/ask/stream",
    responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS},
    response_class=StreamingResponse,
)
def ask_stream(body: AskRequest, state: StateDep, pipeline: PipelineDep) -> StreamingResponse:
    """Answer text as ``token`` events as it is produced, then one ``done`` event with citations.

    Bad input fails before the stream starts, with a JSON error. A client that
    disconnects stops the generation: the server stops pulling tokens.
    """
    settings = state.settings
    generator = state.generator(body.generator)
    started = time.perf_counter()
    question, rewrite_ms = standalone(body, generator, settings.max_question_chars)
    retrieval, tokens = pipeline.stream(question, body.top_k or settings.top_k, generator, body.retriever)

    def events() -> Iterator[str]:
        pieces: list[str] = []
        first_token_ms = None
        try:
            for piece in tokens:
                if first_token_ms is None:
                    first_token_ms = (time.perf_counter() - started) * 1000
                pieces.append(piece)
                yield _event("token", {"text": piece})
            answer = generator.complete(retrieval.request, "".join(pieces))
        except RagError as exc:
            status, code = status_for(exc)
            yield _event("error", {"error": code, "message": str(exc), "status": status})
            return
        timings = {
            **retrieval.timings_ms,
            **({"rewrite_ms": rewrite_ms} if rewrite_ms else {}),
            "first_token_ms": first_token_ms or 0.0,
            "total_ms": (time.perf_counter() - started) * 1000,
        }
        final = AskResponse.from_answer(answer).model_copy(
            update={"timings_ms": {k: round(v, 2) for k, v in timings.items()}, "standalone_question": question}
        )
        yield _event("done", final.model_dump())

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
