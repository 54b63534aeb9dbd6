"""``llama-cpp``: a local GGUF model through llama-cpp-python, offline.

The model loads once per generator (the registry keeps one per process) and reuses
llama.cpp's prompt cache between questions. One answer is generated at a time (a
llama.cpp context is not thread-safe); other requests go on meanwhile. Closing the
token stream (a client that disconnects) stops the generation.

Before generating, the extractive generator's evidence checks run (``choose``): when
retrieval is weak, the model is not asked at all. Afterwards the answer's numbers and
terms must appear in the passages it cites (``rag.generators.prompting``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import GeneratorError, ModelError
from rag.generators.base import GenerationRequest
from rag.generators.extractive import ABSTAIN_TEXT, Choice, Thresholds, abstain_reason, choose
from rag.generators.prompting import PromptShape, finish, messages
from rag.models.gguf import INSTALL_HINT
from rag.types import Answer

CHAT_WAIT_S = 5.0


class LlamaCppGenerator:
    """Answers with a local GGUF model, citing the passages it used."""

    def __init__(
        self,
        model_path: Path,
        thresholds: Thresholds,
        threads: int = 0,
        context: int = 4096,
        max_tokens: int = 256,
        shape: PromptShape | None = None,
    ) -> None:
        self._shape = shape or PromptShape()
        self._model_path = model_path
        self._thresholds = thresholds
        self._threads = threads or max(1, os.cpu_count() or 1)
        self._context = context
        self._max_tokens = max_tokens
        self._llm: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "llama-cpp"

    def _model(self) -> Any:
        if self._llm is None:
            try:
                from llama_cpp import Llama
                from llama_cpp.llama_cache import LlamaRAMCache
            except ImportError as exc:
                raise ModelError(f"llama-cpp-python is not installed; {INSTALL_HINT}") from exc
            try:
                llm = Llama(
                    model_path=str(self._model_path),
                    n_ctx=self._context,
                    n_threads=self._threads,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelError(f"cannot load the GGUF model {self._model_path}: {exc}") from exc
            llm.set_cache(LlamaRAMCache(capacity_bytes=512 * 2**20))
            self._llm = llm
        return self._llm

    def warm_up(self) -> None:
        """Load the model now rather than on the first question."""
        with self._lock:
            self._model()

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        choice = choose(request, self._thresholds)
        if not isinstance(choice, Choice):
            yield ABSTAIN_TEXT
            return
        with self._lock:
            llm = self._model()
            try:
                chunks = llm.create_chat_completion(
                    messages=messages(request, self._shape, choice.sentence),
                    stream=True,
                    temperature=0.0,
                    max_tokens=self._max_tokens,
                )
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except (ValueError, RuntimeError) as exc:
                raise GeneratorError(f"the local model failed: {exc}") from exc

    def chat(self, messages: list[dict[str, str]]) -> str:
        """The model's reply to plain chat messages (follow-up rewriting: rag.conversation).

        It waits at most ``CHAT_WAIT_S`` for answers being generated: a streamed answer holds
        the model between tokens, and the rules can rewrite a follow-up instead.
        """
        if not self._lock.acquire(timeout=CHAT_WAIT_S):
            raise GeneratorError(f"the local model is busy with other answers (waited {CHAT_WAIT_S:.0f} s)")
        try:
            llm = self._model()
            reply = llm.create_chat_completion(messages=messages, temperature=0.0, max_tokens=self._max_tokens)
        except (ValueError, RuntimeError) as exc:
            raise GeneratorError(f"the local model failed: {exc}") from exc
        finally:
            self._lock.release()
        return str(reply["choices"][0]["message"].get("content") or "")

    def complete(self, request: GenerationRequest, text: str) -> Answer:
        return finish(request, text, abstain_reason(request, self._thresholds), self._shape.passages)
