"""``FallbackGenerator``: try each generator in turn until one starts a draft.

Cross-cutting, so it wraps backends rather than living in one: a backend that fails
before its first piece (an unreachable server, a model that cannot load) hands the
question to the next one, and the answer carries a warning that says so. A failure after
the draft has begun is not retried: pieces of it may already be released.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.answer.generators.base import Call, ChatGenerator, DraftStream, Generator
from rag.errors import GeneratorError, RagError
from rag.types import GenerationRequest


class FallbackGenerator:
    """The first of ``generators`` that starts a draft answers; it is named after the first."""

    def __init__(self, generators: Sequence[Generator]) -> None:
        if not generators:
            raise GeneratorError("a fallback needs at least one generator")
        self._generators = tuple(generators)

    @property
    def name(self) -> str:
        return self._generators[0].name

    def stream(self, request: GenerationRequest, call: Call) -> DraftStream:
        for n, generator in enumerate(self._generators):
            shown = call.shown
            pieces = generator.stream(request, call)
            try:
                first = next(pieces, None)
            except RagError as exc:
                pieces.close()
                if n + 1 == len(self._generators):
                    raise
                call.shown = shown
                call.warn(f"{exc}; this is the {self._generators[n + 1].name} answer instead")
                continue
            try:
                if first is not None:
                    yield first
                yield from pieces
            finally:
                pieces.close()
            return

    def chat(self, messages: list[dict[str, str]], call: Call) -> str:
        """The first chat-capable generator's reply (follow-up rewriting)."""
        for generator in self._generators:
            if isinstance(generator, ChatGenerator):
                return generator.chat(messages, call)
        raise GeneratorError("no generator here has a language model to chat with")
