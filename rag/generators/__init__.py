"""Generators by name: a plain registry whose error lists the valid names."""

from __future__ import annotations

from collections.abc import Callable

from rag.config import Settings
from rag.errors import GeneratorError
from rag.generators.base import GenerationRequest, Generator, ScoredSentence, generate
from rag.generators.extractive import ExtractiveGenerator

GeneratorFactory = Callable[[Settings], Generator]

REGISTRY: dict[str, GeneratorFactory] = {
    "extractive": lambda settings: ExtractiveGenerator(settings.abstain_threshold),
}


def create_generator(name: str, settings: Settings) -> Generator:
    """Build the generator registered under ``name``."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise GeneratorError(f"unknown generator {name!r}; choose one of: {', '.join(sorted(REGISTRY))}") from None
    return factory(settings)


__all__ = ["GenerationRequest", "Generator", "ScoredSentence", "create_generator", "generate", "REGISTRY"]
