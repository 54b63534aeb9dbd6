"""Streamed responses over an answer stream that stop the generation when the client goes away."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from rag.answer.stream import AnswerStream


async def _until_disconnect(stream: AnswerStream, chunks: Iterator[str]) -> AsyncIterator[str]:
    try:
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
    finally:
        # Also reached when Starlette cancels the response because the client disconnected:
        # stop the model now rather than when the abandoned iterator is garbage-collected.
        stream.cancel()


def event_stream(stream: AnswerStream, chunks: Iterator[str]) -> StreamingResponse:
    """``chunks`` (Server-Sent Events rendered from ``stream``) as a response."""
    return StreamingResponse(
        _until_disconnect(stream, chunks), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
