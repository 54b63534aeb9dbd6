"""``llama-cpp``: a local GGUF model through llama-cpp-python, offline.

The model loads once per generator (the registry keeps one per process). One answer is
generated at a time (a llama.cpp context is not thread-safe); other requests go on
meanwhile. Closing the draft stream (a client that disconnects, a draft the verifier
stopped) stops the generation.

No prompt cache is set: llama-cpp-python's ``LlamaRAMCache`` saves, with every answer, a
copy of the logits of up to 512 prompt tokens (512 x 151,936 floats, about 300 MB for
Qwen2.5) that its capacity does not count, so the server grew by about 300 MB an answer
(measured: 1.8 -> 7.1 GB over 10 answers). Without it, llama.cpp still reuses the prompt
prefix a question shares with the one before (the system prompt), and RSS stays flat.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from rag.answer.generators.base import Call, DraftStream
from rag.answer.generators.prompting import PromptShape, messages
from rag.errors import GeneratorError, ModelError
from rag.models.gguf import INSTALL_HINT
from rag.types import GenerationRequest

CHAT_WAIT_S = 5.0


class _TokenCounter:
    """Counts what the model reads and writes: llama-cpp-python reports no usage when it
    streams, so the model's ``sample`` is wrapped. At the first sampled token the context
    holds exactly the prompt; every call samples one token (the end-of-generation one too)."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.sampled = 0

    def reset(self) -> None:
        self.prompt_tokens = self.sampled = 0

    def wrap(self, llm: Any) -> None:
        """Count the samples of this model object (its own attribute shadows the method)."""
        sample = llm.sample

        def counted(*args: Any, **kwargs: Any) -> Any:
            if not self.sampled:
                self.prompt_tokens = int(llm.n_tokens)
            self.sampled += 1
            return sample(*args, **kwargs)

        llm.sample = counted


class LlamaCppGenerator:
    """Drafts answers with a local GGUF model, citing the passages it used."""

    def __init__(
        self,
        model_path: Path,
        threads: int = 0,
        context: int = 4096,
        max_tokens: int = 256,
        shape: PromptShape | None = None,
    ) -> None:
        self._shape = shape or PromptShape()
        self._model_path = model_path
        self._threads = threads or max(1, os.cpu_count() or 1)
        self._context = context
        self._max_tokens = max_tokens
        self._llm: Any = None
        self._lock = threading.Lock()
        self._counter = _TokenCounter()  # of the answer being generated (one at a time)

    @property
    def name(self) -> str:
        return "llama-cpp"

    def _model(self) -> Any:
        """The loaded model (loaded on first use; callers hold the lock)."""
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelError(f"llama-cpp-python is not installed; {INSTALL_HINT}") from exc
            try:
                llm = Llama(
                    model_path=str(self._model_path), n_ctx=self._context, n_threads=self._threads, verbose=False
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelError(f"cannot load the GGUF model {self._model_path}: {exc}") from exc
            self._counter.wrap(llm)
            self._llm = llm
        return self._llm

    def warm_up(self) -> None:
        """Load the model now rather than on the first question."""
        with self._lock:
            self._model()

    def stream(self, request: GenerationRequest, call: Call) -> DraftStream:
        call.shown = min(self._shape.passages, len(request.passages))
        finish = None
        with self._lock:
            llm = self._model()
            counter = self._counter
            counter.reset()
            chunks = None
            try:
                chunks = llm.create_chat_completion(
                    messages=messages(request, self._shape), stream=True, temperature=0.0, max_tokens=self._max_tokens
                )
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    piece = choice["delta"].get("content")
                    if piece:
                        yield piece
            except (ValueError, RuntimeError) as exc:
                raise GeneratorError(f"the local model failed: {exc}") from exc
            finally:
                if chunks is not None:
                    chunks.close()  # stops llama.cpp now, not when the iterator is collected
                # The end-of-generation token is sampled but is not part of the answer.
                call.add_usage(counter.prompt_tokens, counter.sampled - (finish == "stop"))

    def chat(self, messages: list[dict[str, str]], call: Call) -> str:
        """The model's reply to plain chat messages (follow-up rewriting: rag.answer.conversation).

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
        usage = reply.get("usage") or {}
        call.add_usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        return str(reply["choices"][0]["message"].get("content") or "")
