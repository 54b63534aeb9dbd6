"""The Generator protocol and the typed request every generator receives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rag.types import Answer, Passage


@dataclass(frozen=True)
class ScoredSentence:
    """A sentence of a retrieved passage with its similarity to the question."""

    passage_rank: int
    text: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class GenerationRequest:
    """A question, its retrieved passages (best first) and their sentences (best first).

    ``background`` is the question's mean similarity to the corpus at large: how much
    the best passage stands out from it measures how well the corpus covers the question.
    ``keywords`` group the Chinese corpus words each English word of the question may
    mean; ``unknown_names`` are names the corpus never mentions (see rag.lexicon).
    """

    question: str
    passages: tuple[Passage, ...]
    sentences: tuple[ScoredSentence, ...]
    background: float = 0.0
    keywords: tuple[tuple[str, ...], ...] = ()
    unknown_names: tuple[str, ...] = ()


class Generator(Protocol):
    """Answers a question from passages; streaming is the primitive."""

    @property
    def name(self) -> str: ...

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield the answer text in pieces as it is produced."""
        ...

    def complete(self, request: GenerationRequest, text: str) -> Answer:
        """Turn the full streamed text into an answer with citations and abstention."""
        ...


@runtime_checkable
class ChatGenerator(Protocol):
    """A generator backed by a language model, which also answers plain chat messages."""

    def chat(self, messages: list[dict[str, str]]) -> str:
        """The model's whole reply to the messages."""
        ...


def generate(generator: Generator, request: GenerationRequest) -> Answer:
    """The whole answer: collect the stream, then let the generator finish it."""
    return generator.complete(request, "".join(generator.stream(request)))
