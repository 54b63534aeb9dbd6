"""What the app holds while it runs: the loaded pipeline, or why it is not ready."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from rag.answering import Answerer
from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import IndexMissing
from rag.generators import Generators
from rag.pipeline import Pipeline


@dataclass
class AppState:
    """Lifespan state: built once at start-up, read by every request.

    ``pipeline`` is replaced whole after an index update: a request that already holds
    the old one finishes on the old index, the next one sees the new index. ``writer``
    lets one index update run at a time in this process (the index's file lock covers
    other processes).
    """

    settings: Settings
    pipeline: Pipeline | None
    not_ready: str = ""
    embedder: Embedder | None = None
    writer: threading.Lock = field(default_factory=threading.Lock)
    generators: Generators | None = None

    def __post_init__(self) -> None:
        if self.generators is None:
            self.generators = Generators(self.settings)

    def answerer(self) -> Answerer:
        """The answer path over the current pipeline, or 503 (through IndexMissing) while there is no index."""
        pipeline = self.pipeline
        if pipeline is None:
            raise IndexMissing(self.not_ready or "the index is not loaded")
        assert self.generators is not None
        return Answerer(pipeline, self.generators, self.settings)
