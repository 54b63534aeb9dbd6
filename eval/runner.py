"""Run eval questions through the service, in-process or over HTTP, one config at a time."""

from __future__ import annotations

import itertools
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from eval.data import Dataset, Passage, Question
from eval.metrics import (
    answer_found,
    char_f1,
    exact_match,
    first_relevant_rank,
    judgement_found,
    shortest_gold,
    without_markers,
)
from rag.answer.generators import Generators
from rag.answer.retrieval import Pipeline
from rag.answer.stream import Answerer, Query
from rag.config import Settings
from rag.errors import RagError
from rag.index.build import Progress
from rag.index.embedding import Embedder
from rag.index.store import Where
from rag.ingest.loaders import content_hash, parse_text
from rag.library import index_documents, index_paths
from rag.service import open_pipeline
from rag.types import Document

if TYPE_CHECKING:
    import httpx

# Retrieval metrics look this deep whatever the config's top_k.
RETRIEVAL_DEPTH = 10


@dataclass(frozen=True)
class Config:
    """One row of the comparison matrix."""

    generator: str = "extractive"
    top_k: int = 5
    chunk_size: int = 300
    chunk_overlap: int = 60
    retriever: str = "hybrid"

    @property
    def label(self) -> str:
        return f"{self.generator}/{self.retriever}/k{self.top_k}/c{self.chunk_size}"


def matrix(
    generators: list[str], top_ks: list[int], chunk_sizes: list[int], overlap: int, retrievers: list[str]
) -> list[Config]:
    """Every combination of the given options, each row asked the same questions."""
    return [
        Config(g, k, c, min(overlap, c // 2), r)
        for c, r, g, k in itertools.product(chunk_sizes, retrievers, generators, top_ks)
    ]


@dataclass(frozen=True)
class Hit:
    """A retrieved (or cited) passage as the runner sees it."""

    doc_id: str
    title: str


@dataclass(frozen=True)
class Reply:
    """What the service answered, from either path."""

    answer: str
    abstained: bool
    retrieved: tuple[Hit, ...]
    timings_ms: dict[str, float]
    abstain_reason: str = ""
    cited: str = ""  # the title of the first passage the answer cites


@dataclass(frozen=True)
class Record:
    """One question under one config, with its scores."""

    config: str
    qid: str
    question: str
    category: str
    lang: str
    answerable: bool
    answer: str
    abstained: bool
    correct: bool
    f1: float
    exact: bool
    rank: int | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str = ""
    abstain_reason: str = ""
    temporal_type: str = ""
    expected: str = ""  # the gold answer, as the report shows it ("" for an unanswerable question)
    cited: str = ""


class Asker(Protocol):
    """Something that answers a question: the library in-process, or a server over HTTP."""

    def ask(
        self, question: str, config: Config, as_of: date | None = None, withheld: tuple[str, ...] = ()
    ) -> Reply: ...


class InProcessAsker:
    """Asks through the service's own answer path (``rag.answer.stream``), in-process; retrieves
    RETRIEVAL_DEPTH passages for the retrieval metrics, of which the config's top_k are used."""

    def __init__(self, pipeline: Pipeline, settings: Settings) -> None:
        self._answerer = Answerer(pipeline, Generators(settings), settings)
        self._documents = frozenset(pipeline.snapshot.documents)

    def ask(self, question: str, config: Config, as_of: date | None = None, withheld: tuple[str, ...] = ()) -> Reply:
        where = Where(self._documents - set(withheld)) if withheld else None
        query = Query(
            question,
            top_k=config.top_k,
            generator=config.generator,
            retriever=config.retriever,
            depth=RETRIEVAL_DEPTH,
            preview=True,  # as /api/ask/stream: the timings then show when the preview would be sent
            as_of=as_of,
            where=where,
        )
        stream = self._answerer.open(query)
        answer = stream.answer()
        hits = tuple(Hit(p.chunk.doc_id, p.chunk.title) for p in stream.retrieval.ranked)
        cited = answer.citations[0].title if answer.citations else ""
        return Reply(answer.text, answer.abstained, hits, answer.timings_ms, answer.abstain_reason, cited)


class HttpAsker:
    """Black-box: POST /api/ask on a running server. Retrieval is judged by the citations."""

    def __init__(
        self, url: str, timeout_s: float = 120.0, api_key: str = "", transport: httpx.BaseTransport | None = None
    ) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s, headers=headers, transport=transport)

    def ask(self, question: str, config: Config, as_of: date | None = None, withheld: tuple[str, ...] = ()) -> Reply:
        import httpx

        if withheld:
            raise RagError("questions asked without their gold passages are asked in-process only (no --url)")

        payload = {
            "question": question,
            "top_k": config.top_k,
            "generator": config.generator,
            "retriever": config.retriever,
            **({"as_of": as_of.isoformat()} if as_of else {}),
        }
        started = time.perf_counter()
        try:
            response = self._client.post("/api/ask", json=payload)
        except httpx.HTTPError as exc:
            raise RagError(f"cannot reach the server: {exc.__class__.__name__}") from exc
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RagError(f"server answered {response.status_code}: {response.text[:200]}")
        body = response.json()
        hits = tuple(Hit(str(c.get("doc_id", "")), str(c.get("title", ""))) for c in body.get("citations", []))
        timings = {k: float(v) for k, v in (body.get("timings_ms") or {}).items()}
        timings["client_ms"] = elapsed
        reason = str(body.get("abstain_reason") or "")
        cited = hits[0].title if hits else ""
        return Reply(str(body.get("answer", "")), bool(body.get("abstained")), hits, timings, reason, cited)


def relevant(question: Question) -> Callable[[Hit], bool]:
    """Which retrieved passages count as relevant: by gold passage id, else by article title."""
    if question.gold_pids:
        pids = set(question.gold_pids)
        return lambda hit: hit.doc_id in pids
    titles = question.gold_titles
    return lambda hit: any(t in hit.title for t in titles)


def expected(question: Question) -> str:
    """The gold answer as a reader checks it: each group's first form, and the other forms in brackets."""
    parts = []
    for group in question.answer_groups:
        first, *others = group
        parts.append(first + (f" (or {' / '.join(others)})" if others else ""))
    return "; ".join(parts)


def score(question: Question, config: Config, reply: Reply) -> Record:
    """Score one reply: answer found (abstaining counts wrong when answerable), F1, EM, rank."""
    if question.answerable:
        said = without_markers(reply.answer)  # [1] is a citation, not part of the answer
        found = judgement_found if question.answer_type == "judgement" else answer_found
        correct = not reply.abstained and found(said, question.answer_groups)
        gold = shortest_gold(question.answer_groups)
        f1 = 0.0 if reply.abstained else char_f1(said, gold)
        exact = not reply.abstained and exact_match(said, gold)
    else:
        correct, f1, exact = reply.abstained, float(reply.abstained), reply.abstained
    is_relevant = relevant(question)
    rank = first_relevant_rank([is_relevant(hit) for hit in reply.retrieved])
    return Record(
        config=config.label,
        qid=question.qid,
        question=question.question,
        category=question.category,
        lang=question.lang,
        answerable=question.answerable,
        answer=reply.answer,
        abstained=reply.abstained,
        correct=correct,
        f1=f1,
        exact=exact,
        rank=rank,
        timings_ms={k: round(v, 2) for k, v in reply.timings_ms.items()},
        abstain_reason=reply.abstain_reason,
        temporal_type=question.temporal_type,
        expected=expected(question),
        cited=reply.cited,
    )


def failed(question: Question, config: Config, error: str) -> Record:
    """A question the service could not answer at all: wrong, with the reason kept."""
    return Record(
        config.label, question.qid, question.question, question.category, question.lang,
        question.answerable, "", False, False, 0.0, False, None, {}, error, "", question.temporal_type,
        expected(question),
    )  # fmt: skip


def run_config(asker: Asker, questions: Iterable[Question], config: Config) -> Iterator[Record]:
    """Ask every question under one config; errors become failed records, not crashes."""
    for question in questions:
        try:
            yield score(question, config, asker.ask(question.question, config, question.as_of, question.withheld))
        except RagError as exc:
            yield failed(question, config, str(exc))


def passage_documents(name: str, passages: Sequence[Passage]) -> list[Document]:
    """An external data set's passages as documents, one per passage id."""
    return [
        parse_text(p.text, p.pid, f"{name}:{p.pid}", content_hash(p.text.encode()), title=p.title) for p in passages
    ]


def index_settings(base: Settings, cache_root: Path, data: str, chunk_size: int, chunk_overlap: int) -> Settings:
    """Settings for an eval index of ``data`` under ``cache_root``: one folder per chunking,
    embedding precision and store. A store's index starts as a copy of the embedded one of
    the same data when there is one, which then moves there with its vectors (nothing re-embedded)."""
    name = f"{data}-{chunk_size}-{chunk_overlap}"
    if base.embedding_precision != "fp32":
        name += f"-{base.embedding_precision}"
    folder = cache_root / (name if base.store == "embedded" else f"{name}-{base.store}")
    update: dict[str, object] = {"index_dir": folder, "chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
    if base.store == "milvus":
        # One collection per index: a version owns every row of its collection.
        update["milvus_collection"] = re.sub(r"\W", "_", name)
    if not folder.exists() and (cache_root / name).is_dir() and base.store != "embedded":
        shutil.copytree(cache_root / name, folder, ignore=shutil.ignore_patterns(".lock", ".resume"))
    return base.model_copy(update=update)


def prepare_index(
    dataset: Dataset,
    config: Config,
    base: Settings,
    embedder: Embedder,
    cache_root: Path,
    seeds: Path,
    batch_documents: int = 500,
    progress: Progress | None = None,
) -> tuple[Settings, float]:
    """Index the data set for a config's chunking (kept between runs), in batches that survive a crash.

    Returns the settings pointing at that index and the seconds spent building it.
    """
    settings = index_settings(base, cache_root, dataset.name, config.chunk_size, config.chunk_overlap)
    started = time.perf_counter()
    if not dataset.passages:
        index_paths(settings, [seeds], embedder, progress=progress)
    else:
        documents = passage_documents(dataset.name, dataset.passages)
        for start in range(0, len(documents), batch_documents):
            index_documents(settings, documents[start : start + batch_documents], embedder, progress=progress)
    return settings, time.perf_counter() - started


def in_process_asker(settings: Settings, embedder: Embedder) -> InProcessAsker:
    """A warmed-up in-process asker over the index in ``settings``."""
    pipeline = open_pipeline(settings, embedder)
    pipeline.warm_up()
    return InProcessAsker(pipeline, settings)
