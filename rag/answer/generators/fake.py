"""``ScriptedGenerator``: the fake every Generator consumer is tested with.

It drafts a fixed reply in fixed pieces, records the requests it was asked, counts
made-up tokens, and notes whether its stream was closed before the end, so tests can
check what the answer path does with any draft (an invented figure, NOT_FOUND, a wrong
marker) without a model.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.answer.generators.base import Call, DraftStream
from rag.errors import GeneratorError
from rag.types import GenerationRequest


class ScriptedGenerator:
    """Streams ``pieces`` as its draft; ``fail`` raises GeneratorError before the first piece."""

    def __init__(
        self, pieces: Sequence[str], name: str = "scripted", fail: str = "", chat_reply: str | None = None
    ) -> None:
        self._pieces = tuple(pieces)
        self._name = name
        self._fail = fail
        self._chat_reply = chat_reply
        self.requests: list[GenerationRequest] = []
        self.pieces_sent = 0
        self.closed_early = False

    @property
    def name(self) -> str:
        return self._name

    def stream(self, request: GenerationRequest, call: Call) -> DraftStream:
        self.requests.append(request)
        if self._fail:
            raise GeneratorError(self._fail)
        finished = False
        try:
            for piece in self._pieces:
                self.pieces_sent += 1
                call.add_usage(0, 1)
                yield piece
            finished = True
        finally:
            call.add_usage(100, 0)
            self.closed_early = not finished

    def chat(self, messages: list[dict[str, str]], call: Call) -> str:
        if self._chat_reply is None:
            raise GeneratorError("this scripted generator has no chat reply")
        call.add_usage(50, 5)
        return self._chat_reply
