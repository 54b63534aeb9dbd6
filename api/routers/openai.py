"""OpenAI-compatible endpoints: GET /v1/models and POST /v1/chat/completions (streaming or not).

The last user message is the question; the answer text carries ``[n]`` markers and the
response carries the cited passages in an extra ``citations`` field, which OpenAI
clients ignore and RAG-aware clients read. ``usage`` holds the model's real token counts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from api.deps import StateDep
from api.errors import status_for
from api.schemas import AskResponse
from api.streaming import event_stream
from rag.answer.conversation import Turn
from rag.answer.stream import Delta, Done, Query
from rag.config import MAX_TOP_K
from rag.errors import InvalidQuestion, RagError
from rag.types import Answer

router = APIRouter(tags=["openai"])
_CREATED = int(time.time())


class ChatMessage(BaseModel):
    """An OpenAI chat message; content may be text or a list of parts."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    """``stream_options``: ``include_usage`` adds a last chunk with the token counts."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields we use; OpenAI clients send more (temperature, ...), which are accepted."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="a generator name from GET /v1/models")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    top_k: StrictInt | None = Field(default=None, ge=1, le=MAX_TOP_K)
    retriever: Literal["dense", "lexical", "hybrid"] | None = None
    as_of: date | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "rag-news"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


@router.get("/v1/models", response_model=ModelList)
def models(state: StateDep) -> ModelList:
    """The generators this server can run, as models."""
    assert state.generators is not None
    return ModelList(data=[ModelCard(id=name, created=_CREATED) for name in state.generators.available])


def query_of(body: ChatRequest, preview: bool = False) -> Query:
    """The last user message is the question; the messages before it are the conversation,
    from which the answer path makes a follow-up standalone."""
    for n in range(len(body.messages) - 1, -1, -1):
        if body.messages[n].role == "user":
            earlier = tuple(Turn(m.role, m.text()) for m in body.messages[:n])
            return Query(
                question=body.messages[n].text(),
                history=earlier,
                top_k=body.top_k,
                generator=body.model,
                retriever=body.retriever,
                preview=preview,
                as_of=body.as_of,
            )
    raise InvalidQuestion("the conversation has no user message to answer")


def _citations(answer: Answer) -> list[dict[str, Any]]:
    """The answer's citations in the one answer shape (api.schemas.AskResponse)."""
    return [c.model_dump() for c in AskResponse.from_answer(answer).citations]


def _usage(answer: Answer) -> dict[str, int]:
    return AskResponse.from_answer(answer).usage.model_dump()


@router.post("/v1/chat/completions", response_model=None)
def chat_completions(body: ChatRequest, state: StateDep) -> JSONResponse | StreamingResponse:
    """Answer the last user message; ``stream: true`` sends chat.completion.chunk events.

    ``content`` is the verified answer (an abstention is the not-found text); streamed, its
    pieces join to exactly that text. No preview is streamed here: an OpenAI client would
    show the evidence quote as part of the answer.
    """
    stream = state.open_answer(query_of(body))
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        answer = stream.answer()
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": body.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}
                ],
                "usage": _usage(answer),
                "citations": _citations(answer),
                "abstained": answer.abstained,
                "abstain_reason": answer.abstain_reason,
                "timings_ms": answer.timings_ms,
            }
        )
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": choices,
            **({"usage": None} if include_usage else {}),
            **extra,
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def delta(content: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return chunk([{"index": 0, "delta": content, "finish_reason": finish}], **extra)

    def events() -> Iterator[str]:
        yield delta({"role": "assistant", "content": ""})
        try:
            for event in stream:
                if isinstance(event, Delta):
                    yield delta({"content": event.text})
                elif isinstance(event, Done):
                    answer = event.answer
                    yield delta(
                        {}, "stop", citations=_citations(answer), abstained=answer.abstained,
                        abstain_reason=answer.abstain_reason,
                    )  # fmt: skip
                    if include_usage:
                        yield chunk([], usage=_usage(answer))
        except RagError as exc:
            status, code = status_for(exc)
            error = {"message": str(exc), "type": "server_error", "code": code, "status": status}
            yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
            return
        finally:
            stream.close()
        yield "data: [DONE]\n\n"

    return event_stream(stream, events())
