"""Question -> passages: embedding, ranking and the sentences the gate scores.

What happens after retrieval (the gate, generation, verification) is the answer path's
(``rag.answer.stream``), the one place every entry point gets its answers from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from rag.answer.entities import bound_names
from rag.answer.timeline import bind
from rag.errors import InvalidQuestion
from rag.index.embedding import Embedder, Vectors
from rag.index.lexicon import KeywordTranslator
from rag.index.search import Reranker, RetrieverName, check_retriever, rank_chunks, rerank
from rag.index.snapshot import Snapshot
from rag.index.store import Where
from rag.lang import WARM_UP_QUESTION
from rag.lang.zh.dates import date_agreement, dated_first
from rag.types import Chunk, Comparison, GenerationRequest, Passage, QuestionInfo, ScoredSentence, Ymd, passage_text

# Sentences of this many top passages are scored for the extractive answer.
_EVIDENCE_PASSAGES = 3
# A question that names a date looks this deep for passages of that date (rag.lang.zh.dates).
_DATED_POOL = 20
# A question comparing events (rag.answer.timeline) gets this many passages for each event.
_EVENT_PASSAGES = 3


def score_sentences(snapshot: Snapshot, query: Vectors, chunk_rows: list[int]) -> tuple[ScoredSentence, ...]:
    """Sentences of the given chunks (by passage rank) with their similarity to the query, best first."""
    located = [(rank, n) for rank, row in enumerate(chunk_rows) for n in snapshot.sentence_rows(row)]
    if not located:
        return ()
    sims = snapshot.sentence_vectors[[n for _, n in located]].astype(np.float32) @ query
    scored = []
    for (rank, n), sim in zip(located, sims, strict=True):
        sentence = snapshot.sentences[n]
        text = snapshot.documents[snapshot.chunks[sentence.chunk_row].doc_id].text[sentence.start : sentence.end]
        scored.append(ScoredSentence(rank, text, sentence.start, sentence.end, float(sim)))
    scored.sort(key=lambda s: -s.score)
    return tuple(scored)


@dataclass(frozen=True)
class Retrieval:
    """What retrieval produced for a question: the request for the answer path (the best
    ``top_k`` passages), every passage ranked (to the depth asked for), and stage timings."""

    request: GenerationRequest
    timings_ms: dict[str, float]
    ranked: tuple[Passage, ...] = ()


@dataclass(frozen=True)
class RetrievalOptions:
    """How chunks are found: the default mode, fusion depth and constant, the optional reranker."""

    retriever: RetrieverName = "dense"
    depth: int = 50
    rrf_k: int = 60
    lexical_weight: float = 1.0
    rerank_depth: int = 20
    reranker: Reranker | None = None


class Pipeline:
    """Finds the passages of analysed questions over one index snapshot with a given embedder."""

    def __init__(self, embedder: Embedder, snapshot: Snapshot, options: RetrievalOptions | None = None) -> None:
        self._embedder = embedder
        self._snapshot = snapshot
        self._options = options or RetrievalOptions()
        self._translator = KeywordTranslator(snapshot.lexicon, embedder)

    def warm_up(self) -> None:
        """Pay the one-off costs (pinyin tables, first model calls) before the first question."""
        from rag.answer.analysis import analyse

        self._translator.warm_up()
        self.retrieve(analyse(WARM_UP_QUESTION), 1)

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def options(self) -> RetrievalOptions:
        return self._options

    def _rank(
        self, question: str, query: Vectors, mode: RetrieverName, top_k: int, where: Where | None = None
    ) -> list[tuple[int, float]]:
        options = self._options
        reranker = options.reranker
        wanted = max(top_k, options.rerank_depth) if reranker else top_k
        # Keyword search uses the question's own words: adding the translated keywords of an
        # English question (rag.index.lexicon) pulled in the wrong chunk on the seed set.
        store = self._snapshot.store
        hits = rank_chunks(
            store, query, question, mode, wanted, options.depth, options.rrf_k, options.lexical_weight, where
        )
        if reranker:
            texts = [passage_text(self._snapshot.chunks[row]) for row, _ in hits]
            hits = rerank(reranker, question, texts, hits)
        return hits[:top_k]

    def retrieve(
        self,
        info: QuestionInfo,
        top_k: int,
        retriever: str | None = None,
        depth: int = 0,
        where: Where | None = None,
    ) -> Retrieval:
        """Embed the question (analysed: rag.answer.analysis), find its chunks (``retriever``
        mode, default from options), score the sentences of the best, and bind the names the
        question gives to the passages (rag.answer.entities).

        ``depth`` chunks are ranked when it is more than ``top_k`` (for retrieval metrics);
        the request holds the best ``top_k``. ``where`` limits the search to some documents
        or publication days.
        """
        where = self._checked(where)
        mode = check_retriever(retriever or self._options.retriever)
        t0 = time.perf_counter()
        asked = info.asked_date
        if info.comparison is not None:
            return self._compared(info, info.comparison, mode, asked, t0, where)
        wanted = max(top_k, depth)
        if (same_day := self._same_day(info, mode, where)) is not None:
            info, asked = same_day  # "X当天，…": what is asked, on the day X happened
        question = info.text
        translation = self._translator.translate(info)
        query = self._embedder.embed_query(" ".join((question, *translation.query_terms())))
        t1 = time.perf_counter()
        hits = self._rank(question, query, mode, max(wanted, _DATED_POOL) if asked else wanted, where)
        if asked:
            chunks = self._snapshot.chunks
            agreement = [date_agreement(asked, passage_text(chunks[row]), chunks[row].published) for row, _ in hits]
            hits = dated_first(hits, agreement)[:wanted]
        ranked = tuple(Passage(self._snapshot.chunks[row], score) for row, score in hits)
        passages = ranked[:top_k]
        evidence_rows = [row for row, _ in hits[: min(top_k, _EVIDENCE_PASSAGES)]]
        sentences = score_sentences(self._snapshot, query, evidence_rows)
        background = self._background(query, passages[0].chunk if passages else None)
        t2 = time.perf_counter()
        timings = {"embed_ms": (t1 - t0) * 1000, "search_ms": (t2 - t1) * 1000}
        names = translation.names or bound_names(info.name_candidates, [passage_text(p.chunk) for p in passages])
        request = GenerationRequest(
            info, passages, sentences, background, translation.groups, translation.unknown_names, names,
            asked_date=asked,
        )  # fmt: skip
        return Retrieval(request, timings, ranked)

    def _background(self, query: Vectors, best: Chunk | None) -> float | None:
        """The question's mean similarity to the other articles (not the one of the ``best``
        passage), or None when the corpus has no other: a corpus of one article is not a
        background against which that article could stand out (a user's first try is often one file)."""
        snapshot = self._snapshot
        article = (best.doc_id, best.title) if best is not None else None
        others = [i for i, a in enumerate(snapshot.background_articles) if a != article]
        if not others:
            return None
        return float(np.mean(snapshot.background_vectors[others] @ query))

    def _checked(self, where: Where | None) -> Where | None:
        """The filter, or a clear error when it can match nothing by mistake."""
        if where is None:
            return None
        if where.doc_ids is not None and not where.doc_ids & self._snapshot.documents.keys():
            raise InvalidQuestion(
                f"none of the documents {sorted(where.doc_ids)} is indexed; GET /api/documents lists them"
            )
        if where.published_from and where.published_to and where.published_from > where.published_to:
            raise InvalidQuestion(f"published_from {where.published_from} is after published_to {where.published_to}")
        return where

    def _compared(
        self,
        info: QuestionInfo,
        comparison: Comparison,
        mode: RetrieverName,
        asked: Ymd | None,
        started: float,
        where: Where | None,
    ) -> Retrieval:
        """A question comparing events (rag.answer.timeline): each event's passages, found on their
        own; those are the passages retrieved and cited. The names of one event are not in
        another's passage, so none is bound; the gate computes the answer, so no sentence is scored."""
        passages, comparison = self._event_passages(comparison, mode, where)
        timings = {"embed_ms": 0.0, "search_ms": (time.perf_counter() - started) * 1000}
        request = GenerationRequest(info, passages, (), asked_date=asked, comparison=comparison)
        return Retrieval(request, timings, passages)

    def _same_day(
        self, info: QuestionInfo, mode: RetrieverName, where: Where | None
    ) -> tuple[QuestionInfo, Ymd] | None:
        """For "X当天，…" (rag.answer.timeline): what is asked and the day X happened, found in
        the passage that reports X; None for other questions, or when X cannot be dated to a day."""
        if info.same_day is None:
            return None
        event, rest = info.same_day.event, info.same_day.rest
        hits = self._rank(event, self._embedder.embed_query(event), mode, _EVENT_PASSAGES, where)
        passages = [Passage(self._snapshot.chunks[row], score) for row, score in hits]
        dated = bind(event, passages, range(len(passages)))
        if isinstance(dated, str) or dated.when[2] is None:
            return None
        return rest, dated.when

    def _event_passages(
        self, comparison: Comparison, mode: RetrieverName, where: Where | None
    ) -> tuple[tuple[Passage, ...], Comparison]:
        """The best passages for each event a question compares, taken in turns (every
        event's best first), and the comparison with each event's passage ranks."""
        queries = self._embedder.embed_queries(list(comparison.events))
        found = [
            self._rank(event, query, mode, _EVENT_PASSAGES, where)
            for event, query in zip(comparison.events, queries, strict=True)
        ]
        order: list[int] = []
        for turn in range(_EVENT_PASSAGES):
            order.extend(hits[turn][0] for hits in found if turn < len(hits) and hits[turn][0] not in order)
        scores = {row: score for hits in found for row, score in hits}
        passages = tuple(Passage(self._snapshot.chunks[row], scores[row]) for row in order)
        candidates = tuple(tuple(order.index(row) for row, _ in hits) for hits in found)
        return passages, replace(comparison, candidates=candidates)
