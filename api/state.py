"""What the app holds while it runs: the loaded pipeline, or why it is not ready."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from api.observability import Metrics
from api.work import IndexProgress, PageRenders, Slots, WorkQueue, parse_queue, write_queue
from rag.answer.generators import Generators, resolve_name
from rag.answer.retrieval import Pipeline
from rag.answer.stream import Answerer, AnswerStream, Query
from rag.config import Settings
from rag.errors import ConfigError, IndexMissing, RagError
from rag.index.embedding import Embedder
from rag.index.snapshot import live_version
from rag.library import DocumentLibrary

logger = logging.getLogger(__name__)
_RELOADING = threading.RLock()
# Beside the index: the update one ``rag serve`` process runs, for the others to report.
PROGRESS_FILE = ".progress.json"


@dataclass
class AppState:
    """Lifespan state: built once at start-up, read by every request.

    ``pipeline`` is replaced whole after an index update: a request that already holds
    the old one finishes on the old index, the next one sees the new index. ``writes``
    runs one index update at a time in this process, on its own thread (the index's file
    lock covers other processes); ``answers`` caps the language-model answers in flight.
    """

    settings: Settings
    pipeline: Pipeline | None
    not_ready: str = ""
    embedder: Embedder | None = None
    generators: Generators | None = None
    metrics: Metrics = field(default_factory=Metrics)
    stopping: threading.Event = field(default_factory=threading.Event)  # set when shutdown begins
    version: str = ""  # the index version the pipeline was loaded from
    writes: WorkQueue = field(init=False)
    parses: WorkQueue = field(init=False)  # uploads read before they queue for a write
    pages: PageRenders = field(default_factory=PageRenders)  # scanned pages shown beside citations
    answers: Slots = field(init=False)
    library: DocumentLibrary = field(init=False)  # the documents folder and the index, changed together
    progress: IndexProgress = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        if self.generators is None:
            default = resolve_name(settings.generator, settings)
            offered = settings.offered_generator_set() or frozenset({default, "extractive"})
            if default not in offered:
                raise ConfigError(
                    f"RAG_GENERATOR={settings.generator} means {default} here, which RAG_OFFERED_GENERATORS "
                    f"({', '.join(sorted(offered))}) does not offer; name one of those as RAG_GENERATOR"
                )
            self.generators = Generators(settings, offered)
        self.writes = write_queue(settings.max_pending_writes)
        self.parses = parse_queue(settings.max_pending_parses, settings.parse_workers, settings.parses_per_client)
        self.answers = Slots(settings.max_pending_answers, "language-model answers", "RAG_MAX_PENDING_ANSWERS")
        self.progress = IndexProgress(settings.index_dir / PROGRESS_FILE)
        self.library = DocumentLibrary(settings)

    def reload(self, only_if_newer: bool = False) -> None:
        """Load the live index version and swap it in (requests already running keep theirs);
        with ``only_if_newer``, not when it is the one loaded (another request loaded it first)."""
        from rag.service import open_pipeline

        assert self.embedder is not None
        with _RELOADING:
            version = live_version(self.settings.index_dir)
            if only_if_newer and (not version or version == self.version):
                return
            pipeline = open_pipeline(self.settings, self.embedder)
            pipeline.warm_up()
            self.pipeline, self.not_ready, self.version = pipeline, "", version

    def reload_if_changed(self) -> bool:
        """Reload when another process (or this one) made a newer version live; whether it did.
        Cheap when nothing changed (one small file read); requests that find a change at once
        wait for one load."""
        version = live_version(self.settings.index_dir)
        if not version or version == self.version or self.embedder is None:
            return False
        try:
            self.reload(only_if_newer=True)
        except RagError as exc:  # a broken new version: keep serving the loaded one
            logger.warning("the index at %s changed but does not load: %s", self.settings.index_dir, exc)
            self.version = live_version(self.settings.index_dir)  # not retried until it changes again
            return False
        logger.info("serving index version %s", self.version)
        return True

    def catch_up(self) -> None:
        """Read-your-writes across ``rag serve --workers N``: before a request reads the index,
        load a version another process made live (a client's upload a moment ago) rather than
        wait for the poll. Not while this process is writing one itself (it loads its own), nor
        when polling is off (RAG_INDEX_POLL_S=0); a failure keeps the loaded version."""
        if self.settings.index_poll_s <= 0 or self.writes.admitted:
            return
        try:
            self.reload_if_changed()
        except Exception:  # the request is still answered, from the version loaded
            logger.exception("loading the newest index version failed; serving the one loaded")

    def answerer(self) -> Answerer:
        """The answer path over the newest index, or 503 (through IndexMissing) while there is none.

        Read-your-writes across ``rag serve --workers N``: a version another process made live
        (a client's upload, a moment ago) is loaded before answering, not at the next poll."""
        self.catch_up()
        pipeline = self.pipeline
        if pipeline is None:
            raise IndexMissing(self.not_ready or "the index is not loaded")
        assert self.generators is not None
        return Answerer(pipeline, self.generators, self.settings)

    def open_answer(self, query: Query) -> AnswerStream:
        """Open the answer stream for a request; a language-model answer holds one of the
        ``answers`` slots until its stream closes (503 when none is free)."""
        answerer = self.answerer()
        assert self.generators is not None
        give_back = self.answers.take() if self.generators.resolve(query.generator) != "extractive" else None
        try:
            stream = answerer.open(query)
        except BaseException:
            if give_back is not None:
                give_back()
            raise
        if give_back is not None:
            stream.on_close(give_back)
        stream.on_answer(lambda answer: self.metrics.record_answer(answer, stream.generator))
        return stream
