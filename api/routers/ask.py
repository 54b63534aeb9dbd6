"""POST /api/ask (whole answer) and /api/ask/stream (Server-Sent Events), over the one answer path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import StateDep
from api.errors import status_for
from api.schemas import AskRequest, AskResponse, ErrorBody
from api.streaming import event_stream
from rag.answer.conversation import Turn
from rag.answer.stream import AnswerStream, Delta, Done, Preview, Query
from rag.errors import RagError

router = APIRouter(tags=["questions"])

_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (415, 422, 503)}


def query_of(body: AskRequest, preview: bool = True) -> Query:
    """The request as a query of the answer path."""
    return Query(
        question=body.question,
        history=tuple(Turn(m.role, m.content) for m in body.history),
        top_k=body.top_k,
        generator=body.generator,
        retriever=body.retriever,
        preview=preview,
        as_of=body.as_of,
        where=body.where(),
    )


@router.post("/api/ask", response_model=AskResponse, responses=_ERRORS)
def ask(body: AskRequest, state: StateDep) -> AskResponse:
    """Answer a question from the indexed documents, with citations."""
    stream = state.open_answer(query_of(body, preview=False))
    return AskResponse.from_answer(stream.answer(), stream.question)


def _event(name: str, payload: object) -> str:
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


def sse_events(stream: AnswerStream) -> Iterator[str]:
    """The answer stream as Server-Sent Events: ``preview``, ``token``s, then ``done`` (or ``error``)."""
    try:
        for event in stream:
            if isinstance(event, Preview):
                yield _event("preview", AskResponse.from_answer(event.answer, stream.question).model_dump())
            elif isinstance(event, Delta):
                yield _event("token", {"text": event.text})
            elif isinstance(event, Done):
                yield _event("done", AskResponse.from_answer(event.answer, stream.question).model_dump())
    except RagError as exc:
        status, code = status_for(exc)
        yield _event("error", {"error": code, "message": str(exc), "status": status})
    finally:
        stream.close()


@router.post(
    "/api/ask/stream",
    responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS},
    response_class=StreamingResponse,
)
def ask_stream(body: AskRequest, state: StateDep) -> StreamingResponse:
    """A ``preview`` event with the quoted evidence when a language model answers, then the
    verified answer text as ``token`` events, then one ``done`` event with the final answer.

    The tokens join to exactly the final ``answer``, and their ``[n]`` markers refer to its
    citations. Bad input fails before the stream starts, with a JSON error. A client that
    disconnects stops the generation.
    """
    stream = state.open_answer(query_of(body))
    return event_stream(stream, sse_events(stream))
