"""OpenAI-compatible endpoints: GET /v1/models and POST /v1/chat/completions (streaming or not).

The last user message is the question; the answer text carries ``[n]`` markers and the
response carries the cited passages in an extra ``citations`` field, which OpenAI
clients ignore and RAG-aware clients read.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PipelineDep, StateDep
from api.errors import status_for
from api.schemas import AskResponse, CitationModel
from rag.conversation import ChatFunction, Turn, standalone_question
from rag.errors import InvalidQuestion, RagError
from rag.generators import chat_function
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


class ChatRequest(BaseModel):
    """The fields we use; OpenAI clients send more (temperature, ...), which are accepted."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="a generator name from GET /v1/models")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    top_k: int | None = Field(default=None, ge=1, le=50)
    retriever: Literal["dense", "lexical", "hybrid"] | None = None


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


def question_of(messages: list[ChatMessage], chat: ChatFunction | None = None, max_chars: int = 2000) -> str:
    """The last user message is the question, made standalone from the messages before it
    (by ``chat``, the generator's language model, when it has one)."""
    for n in range(len(messages) - 1, -1, -1):
        if messages[n].role == "user":
            earlier = [Turn(m.role, m.text()) for m in messages[:n]]
            return standalone_question(messages[n].text(), earlier, chat, max_chars)
    raise InvalidQuestion("the conversation has no user message to answer")


def with_markers(answer: Answer) -> str:
    """The answer text with a ``[n]`` marker for each citation (LLM answers carry their own)."""
    if answer.abstained or not answer.citations or re.search(r"\[\d+\]", answer.text):
        return answer.text
    return answer.text + " " + "".join(f"[{n}]" for n in range(1, len(answer.citations) + 1))


def _citations(answer: Answer) -> list[dict[str, Any]]:
    return [CitationModel(**vars(c)).model_dump() for c in answer.citations]


@router.post("/v1/chat/completions", response_model=None)
def chat_completions(body: ChatRequest, state: StateDep, pipeline: PipelineDep) -> JSONResponse | StreamingResponse:
    """Answer the last user message; ``stream: true`` sends chat.completion.chunk events."""
    settings = state.settings
    generator = state.generator(body.model)
    question = question_of(body.messages, chat_function(generator), settings.max_question_chars)
    top_k = body.top_k or settings.top_k
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        answer = pipeline.ask(question, top_k, generator, body.retriever)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": body.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": with_markers(answer)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                "citations": _citations(answer),
                "abstained": answer.abstained,
                "timings_ms": answer.timings_ms,
            }
        )
    retrieval, tokens = pipeline.stream(question, top_k, generator, body.retriever)

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def events() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        pieces: list[str] = []
        try:
            for piece in tokens:
                pieces.append(piece)
                yield chunk({"content": piece})
            answer = generator.complete(retrieval.request, "".join(pieces))
        except RagError as exc:
            status, code = status_for(exc)
            error = {"message": str(exc), "type": "server_error", "code": code, "status": status}
            yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
            return
        tail = with_markers(answer)[len(answer.text) :]
        if tail:
            yield chunk({"content": tail})
        final = AskResponse.from_answer(answer)
        yield chunk({}, "stop", citations=_citations(answer), abstained=final.abstained)
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
