"""``openai``: any OpenAI-compatible chat server (vLLM, Ollama, llama.cpp's server, a hosted API).

Streaming over ``POST {base_url}/chat/completions``, with a timeout, and retries with
exponential backoff on 429, 5xx and connection errors (only before the first token: a
half-streamed answer is never restarted). The prompt is the local model's
(``rag.answer.generators.prompting``). Token counts come from the server's final usage chunk
(``stream_options.include_usage``), when it sends one.

Falling back to the extractive answer when the server cannot be reached is not done
here: the registry wraps this generator in ``FallbackGenerator`` (``RAG_GENERATOR_FALLBACK``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.answer.generators.base import Call, DraftStream
from rag.answer.generators.prompting import PromptShape, messages
from rag.errors import GeneratorError
from rag.remote import RETRY_STATUS
from rag.types import GenerationRequest

if TYPE_CHECKING:
    import httpx

CHAT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Backend:
    """Where the server is and how patiently to talk to it."""

    base_url: str
    model: str
    api_key: str = ""
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 0.5
    max_tokens: int = 256


class OpenAICompatGenerator:
    """Drafts answers through an OpenAI-compatible chat completions endpoint."""

    def __init__(
        self,
        backend: Backend,
        shape: PromptShape | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        self._backend = backend
        self._shape = shape or PromptShape()
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}
        self._client = httpx.Client(
            base_url=backend.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(backend.timeout_s, connect=min(10.0, backend.timeout_s)),
            transport=transport,
        )

    @property
    def name(self) -> str:
        return "openai"

    def _payload(self, chat: list[dict[str, str]]) -> dict[str, object]:
        return {
            "model": self._backend.model,
            "messages": chat,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.0,
            "max_tokens": self._backend.max_tokens,
        }

    def _events(
        self, payload: dict[str, object], call: Call, retries: int | None = None, timeout_s: float | None = None
    ) -> DraftStream:
        """Content pieces from the server's stream; retried while nothing has been yielded."""
        import httpx

        retries = self._backend.retries if retries is None else retries
        timeout = httpx.Timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        attempt = 0
        started = False
        while True:
            try:
                with self._client.stream("POST", "/chat/completions", json=payload, timeout=timeout) as response:
                    if response.status_code in RETRY_STATUS and attempt < retries:
                        raise _Retry(f"HTTP {response.status_code}")
                    if response.status_code in (400, 422) and "stream_options" in payload:
                        # A server that refuses the usage option answers without it.
                        response.read()
                        if "stream_options" in response.text:
                            payload = {k: v for k, v in payload.items() if k != "stream_options"}
                            continue
                    if response.status_code != 200:
                        response.read()
                        raise GeneratorError(
                            f"the OpenAI-compatible server at {self._backend.base_url} answered "
                            f"{response.status_code}: {response.text[:200]}"
                        )
                    for piece in _content(response.iter_lines(), call):
                        started = True
                        yield piece
                    return
            except (_Retry, httpx.TransportError) as exc:
                if started:
                    raise GeneratorError(
                        f"the OpenAI-compatible server at {self._backend.base_url} broke off the answer "
                        f"({exc.__class__.__name__})"
                    ) from exc
                if attempt >= retries:
                    raise GeneratorError(
                        f"cannot reach the OpenAI-compatible server at {self._backend.base_url} "
                        f"({exc.__class__.__name__}: {exc}) after {attempt + 1} attempts"
                    ) from exc
                self._sleep(self._backend.backoff_s * 2**attempt)
                attempt += 1

    def chat(self, messages: list[dict[str, str]], call: Call) -> str:
        """The server's reply to plain chat messages (follow-up rewriting: rag.answer.conversation).

        One attempt with a short timeout: the rules can rewrite a follow-up instead, and the
        answer that follows retries on its own.
        """
        timeout_s = min(CHAT_TIMEOUT_S, self._backend.timeout_s)
        return "".join(self._events(self._payload(messages), call, retries=0, timeout_s=timeout_s))

    def stream(self, request: GenerationRequest, call: Call) -> DraftStream:
        call.shown = min(self._shape.passages, len(request.passages))
        events = self._events(self._payload(messages(request, self._shape)), call)
        try:
            yield from events
        finally:
            events.close()  # closes the HTTP response: the server stops generating


class _Retry(Exception):
    """A response worth retrying."""


def _content(lines: Iterator[str], call: Call) -> Iterator[str]:
    """The content deltas of a chat completions event stream; its usage is counted on ``call``."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise GeneratorError(f"the OpenAI-compatible server sent an unreadable event: {data[:100]}") from exc
        if "error" in event:
            raise GeneratorError(f"the OpenAI-compatible server failed: {str(event['error'])[:200]}")
        usage: dict[str, Any] = event.get("usage") or {}
        if usage:
            call.add_usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        for choice in event.get("choices", []):
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece
