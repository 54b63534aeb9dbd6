"""``openai``: any OpenAI-compatible chat server (vLLM, Ollama, llama.cpp's server, a hosted API).

Streaming over ``POST {base_url}/chat/completions``, with a timeout, and retries with
exponential backoff on 429, 5xx and connection errors (only before the first token: a
half-streamed answer is never restarted). The prompt, the evidence gate, the citations
and the grounding check are the same as the local model's (``rag.generators.prompting``).

When the server cannot be reached and ``fallback`` is on, the extractive answer is given
instead, with a warning in the answer; otherwise the error says which server failed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rag.errors import GeneratorError
from rag.generators.base import GenerationRequest
from rag.generators.extractive import ABSTAIN_TEXT, Choice, ExtractiveGenerator, Thresholds, abstain_reason, choose
from rag.generators.prompting import PromptShape, finish, messages
from rag.types import Answer

if TYPE_CHECKING:
    import httpx

CHAT_TIMEOUT_S = 10.0
_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


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
    """Answers through an OpenAI-compatible chat completions endpoint."""

    def __init__(
        self,
        backend: Backend,
        thresholds: Thresholds,
        shape: PromptShape | None = None,
        fallback: bool = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        self._backend = backend
        self._thresholds = thresholds
        self._shape = shape or PromptShape()
        self._fallback = ExtractiveGenerator(thresholds) if fallback else None
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}
        self._client = httpx.Client(
            base_url=backend.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(backend.timeout_s, connect=min(10.0, backend.timeout_s)),
            transport=transport,
        )
        # Requests answered by the fallback, so that complete() can say so (keyed by id,
        # removed by complete()).
        self._fell_back: dict[int, str] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "openai"

    def _payload(self, request: GenerationRequest, choice: Choice) -> dict[str, object]:
        return {
            "model": self._backend.model,
            "messages": messages(request, self._shape, choice.sentence),
            "stream": True,
            "temperature": 0.0,
            "max_tokens": self._backend.max_tokens,
        }

    def _events(
        self, payload: dict[str, object], retries: int | None = None, timeout_s: float | None = None
    ) -> Iterator[str]:
        """Content pieces from the server's stream; retried while nothing has been yielded."""
        import httpx

        retries = self._backend.retries if retries is None else retries
        timeout = httpx.Timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        attempt = 0
        started = False
        while True:
            try:
                with self._client.stream("POST", "/chat/completions", json=payload, timeout=timeout) as response:
                    if response.status_code in _RETRY_STATUS and attempt < retries:
                        raise _Retry(f"HTTP {response.status_code}")
                    if response.status_code != 200:
                        response.read()
                        raise GeneratorError(
                            f"the OpenAI-compatible server at {self._backend.base_url} answered "
                            f"{response.status_code}: {response.text[:200]}"
                        )
                    for piece in _content(response.iter_lines()):
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

    def chat(self, messages: list[dict[str, str]]) -> str:
        """The server's reply to plain chat messages (follow-up rewriting: rag.conversation).

        One attempt with a short timeout: the rules can rewrite a follow-up instead, and the
        answer that follows retries on its own.
        """
        payload = {
            "model": self._backend.model,
            "messages": messages,
            "stream": True,
            "temperature": 0.0,
            "max_tokens": self._backend.max_tokens,
        }
        return "".join(self._events(payload, retries=0, timeout_s=min(CHAT_TIMEOUT_S, self._backend.timeout_s)))

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        choice = choose(request, self._thresholds)
        if not isinstance(choice, Choice):
            yield ABSTAIN_TEXT
            return
        events = self._events(self._payload(request, choice))
        try:
            first = next(events, None)
        except GeneratorError as exc:
            if self._fallback is None:
                raise
            with self._lock:
                self._fell_back[id(request)] = str(exc)
            yield from self._fallback.stream(request)
            return
        if first is not None:
            yield first
            yield from events

    def complete(self, request: GenerationRequest, text: str) -> Answer:
        with self._lock:
            failure = self._fell_back.pop(id(request), None)
        if failure is not None and self._fallback is not None:
            answer = self._fallback.complete(request, text)
            return replace(answer, warnings=(f"{failure}; this is the extractive answer instead",))
        return finish(request, text, abstain_reason(request, self._thresholds), self._shape.passages)


class _Retry(Exception):
    """A response worth retrying."""


def _content(lines: Iterator[str]) -> Iterator[str]:
    """The content deltas of a chat completions event stream."""
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
        for choice in event.get("choices", []):
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece
