"""Generators by name: a plain registry whose error lists the valid names."""

from __future__ import annotations

from collections.abc import Callable

from rag.config import Settings
from rag.errors import GeneratorError
from rag.generators.base import GenerationRequest, Generator, ScoredSentence, generate
from rag.generators.extractive import ExtractiveGenerator, Thresholds

GeneratorFactory = Callable[[Settings], Generator]

REGISTRY: dict[str, GeneratorFactory] = {
    "extractive": lambda settings: ExtractiveGenerator(
        Thresholds(min_sentence=settings.abstain_min_similarity, min_margin=settings.abstain_min_margin)
    ),
}


def create_generator(name: str, settings: Settings) -> Generator:
    """Build the generator registered under ``name``."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise GeneratorError(f"unknown generator {name!r}; choose one of: {', '.join(sorted(REGISTRY))}") from None
    return factory(settings)


__all__ = ["REGISTRY", "GenerationRequest", "Generator", "ScoredSentence", "create_generator", "generate"]
