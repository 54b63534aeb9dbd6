"""The Generator protocol and the call record every generator reports on (the request is rag.types).

A generator writes a *draft*: text with ``[n]`` markers that point at the request's
passages (``[1]`` is the best passage). It never decides what a client sees: the answer
path (``rag.answer.stream``) gates the request before a generator is asked, and verifies the
draft (``rag.answer.grounding``) before any of it is released.
"""

from __future__ import annotations

import collections.abc
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from rag.types import GenerationRequest, Usage

# A draft as it streams: a generator object, so that ``close()`` stops the work behind it.
DraftStream = collections.abc.Generator[str, None, None]


@dataclass
class Call:
    """What one answer's model calls report back, on an object that travels with the request.

    Generators add the tokens their model read and wrote, warnings for the client (a
    fallback, say), and how many passages they put before the model (``shown``: the
    answer's figures must come from those).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    warnings: list[str] = field(default_factory=list)
    shown: int | None = None

    def add_usage(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Count one model call's tokens."""
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens

    def warn(self, message: str) -> None:
        """A warning the client will see with the answer."""
        self.warnings.append(message)

    @property
    def usage(self) -> Usage:
        return Usage(self.prompt_tokens, self.completion_tokens)


class Generator(Protocol):
    """Drafts an answer from gated passages; streaming is the only mode."""

    @property
    def name(self) -> str: ...

    def stream(self, request: GenerationRequest, call: Call) -> DraftStream:
        """Yield the draft in pieces as it is produced; closing the iterator stops the work."""
        ...


@runtime_checkable
class ChatGenerator(Protocol):
    """A generator backed by a language model, which also answers plain chat messages."""

    def chat(self, messages: list[dict[str, str]], call: Call) -> str:
        """The model's whole reply to the messages (its tokens are counted on ``call``)."""
        ...
