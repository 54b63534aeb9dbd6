"""Typed records passed between the library's modules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Article:
    """A span of a document that holds one article, with its headline."""

    title: str
    start: int
    end: int


# A box on a page: left, top, right, bottom, each a fraction of the page's width or height.
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Region:
    """Where a span of a document's cleaned text (``start``..``end``) is printed: a page of a
    scan (1-based) and the box of the printed line there (rag.ingest.layout)."""

    start: int
    end: int
    page: int
    box: Box


@dataclass(frozen=True)
class Document:
    """A cleaned source document: its id, where it came from, its text and articles, and
    the day it was published (YYYY-MM-DD; empty when unknown). A scan (an image, or a PDF
    read by OCR) also has its page count and where each printed line of its text is."""

    doc_id: str
    source: str
    text: str
    content_hash: str
    articles: tuple[Article, ...] = ()
    published: str = ""
    pages: int = 0
    regions: tuple[Region, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A piece of a document's cleaned text, with offsets into that text."""

    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    published: str = ""  # its document's publication day, YYYY-MM-DD ("" when unknown)
    regions: tuple[Region, ...] = ()  # where its text is printed, when its document is a scan

    @property
    def page(self) -> int:
        """The scan page the chunk starts on (0: its document is not a scan)."""
        return self.regions[0].page if self.regions else 0


def passage_text(chunk: Chunk) -> str:
    """A chunk as embedded, keyword-indexed and shown: its article title, then its text."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk and its relevance score."""

    chunk: Chunk
    score: float


@dataclass(frozen=True)
class Citation:
    """A passage used by an answer.

    ``start``/``end`` locate the passage text in its cleaned document;
    ``evidence_start``/``evidence_end`` the part of it that supports the answer.
    """

    doc_id: str
    title: str
    chunk_id: str
    text: str
    score: float
    start: int
    end: int
    evidence_start: int
    evidence_end: int
    published: str = ""
    # Where the passage is printed, line by line, when its document is a scan; the lines
    # that overlap evidence_start..evidence_end print the evidence.
    regions: tuple[Region, ...] = ()

    @property
    def evidence_regions(self) -> tuple[Region, ...]:
        """The printed lines of the evidence (all the passage's lines when none overlaps it)."""
        inside = tuple(r for r in self.regions if r.start < self.evidence_end and r.end > self.evidence_start)
        return inside or self.regions

    @property
    def page(self) -> int:
        """The scan page the evidence is printed on (0: the document is not a scan)."""
        found = self.evidence_regions
        return found[0].page if found else 0


@dataclass(frozen=True)
class Usage:
    """Tokens a language model read and wrote for one answer (zero for the extractive generator)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Answer:
    """The answer to a question: verified text with ``[n]`` markers that refer to ``citations``,
    or an abstention (``rag.lang.ABSTAIN_TEXT`` and why)."""

    text: str
    abstained: bool
    citations: tuple[Citation, ...]
    evidence: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    abstain_reason: str = ""
    warnings: tuple[str, ...] = ()
    usage: Usage = Usage()

    def as_json(self) -> dict[str, object]:
        """The answer as every client receives it (``rag ask --json``, ``/api/ask``, ``/v1``):
        its citations with the page their evidence is printed on, its usage with the total."""
        return {
            "answer": self.text,
            "abstained": self.abstained,
            "abstain_reason": self.abstain_reason,
            "evidence": self.evidence,
            "citations": [{**asdict(c), "page": c.page} for c in self.citations],
            "timings_ms": dict(self.timings_ms),
            "warnings": list(self.warnings),
            "usage": {**asdict(self.usage), "total_tokens": self.usage.total_tokens},
        }


@dataclass(frozen=True)
class TextBox:
    """A line of text an OCR engine read on a page image: its box in pixels (the bounds of the
    line as printed, a skewed line included) and the slope of its baseline (radians, y down)."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    angle: float = 0.0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass(frozen=True)
class ScoredSentence:
    """A sentence of a retrieved passage with its similarity to the question."""

    passage_rank: int
    text: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Choice:
    """The evidence the gate chose: the best sentence, and the short answer cut from it."""

    sentence: ScoredSentence
    answer: str
    score: float
    draft: bool = False  # the answer is a whole draft with its own [n] markers (rag.answer.timeline)
    confidence: float = 1.0  # that the evidence answers the question (rag.answer.confidence)
    typed: bool = False  # the answer is a span of the asked type (a figure, a date, a name), not the sentence


# Which event came first or last, or whether all share a year, month or day.
Relation = Literal["earliest", "latest", "year", "month", "day"]


@dataclass(frozen=True)
class Comparison:
    """What a question compares (rag.answer.timeline): the events as it words them, the relation it
    asks about (earliest, latest, or the same year, month or day), and for each event the
    ranks of the passages retrieved for it."""

    events: tuple[str, ...]
    relation: Relation
    candidates: tuple[tuple[int, ...], ...] = ()  # set by the pipeline, one tuple per event


Ymd = tuple[int | None, int | None, int | None]  # a date, any part unknown (None)
Form = Literal["number", "date", "person", "place", "yes-no", "list", "comparison", "same-day", "other"]
Aggregate = Literal["", "max", "min", "total"]


@dataclass(frozen=True)
class NameCandidate:
    """A word the question's main clause names, as Chinese word tagging sees it: its part of
    speech (ns place, nt organisation, nr person) and how well the dictionary knows it."""

    word: str
    tag: str
    known: int


@dataclass(frozen=True)
class AskedContext:
    """What a question says of the figure or date it asks for: the words just before its
    question word (多少, 什么时候), and the character pairs around it."""

    left: str = ""
    pairs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SameDay:
    """ "X当天，…": the event X whose day the question is about, and the rest of the question."""

    event: str
    rest: QuestionInfo


@dataclass(frozen=True)
class QuestionInfo:
    """A question analysed once (``rag.answer.analysis.analyse``): every later stage reads this,
    none parses the question text again.

    ``text`` is the question as searched (a follow-up made standalone), ``original`` as asked.
    ``form`` is its shape: what it asks for, or a comparison of events or an "X当天" question,
    which carry their parts; ``asks`` is what its words ask for whatever its shape (the 多少 of
    "X当天，Y有多少…" asks a number). ``asked_date`` is the date it is about (relative words resolved on the day it is
    asked). ``units`` are the units its number should carry (empty: any), ``counted_noun`` what
    it counts, ``titles`` the titles of the person it asks for (an alternation; '' for none),
    ``aggregate`` whether it asks for the highest, lowest or a total. ``pairs`` and
    ``topic_pairs`` are its Chinese character pairs (all, and those without question words);
    ``given_numbers`` and ``latin_terms`` the figures and Latin words it gives itself;
    ``name_candidates`` the names of its main clause, ``english_words`` the content words of
    its Latin-script part (translated by the corpus lexicon at retrieval).
    """

    text: str
    original: str = ""
    language: str = "en"
    form: Form = "other"
    asks: Form = "other"
    comparison: Comparison | None = None
    same_day: SameDay | None = None
    asked_date: Ymd | None = None
    units: tuple[str, ...] = ()
    counted_units: tuple[str, ...] = ()
    counted_noun: str = ""
    titles: str = ""
    asks_year: bool = False
    aggregate: Aggregate = ""
    given_numbers: tuple[str, ...] = ()
    latin_terms: tuple[str, ...] = ()
    pairs: frozenset[str] = frozenset()
    topic_pairs: frozenset[str] = frozenset()
    number_context: AskedContext = AskedContext()
    date_context: AskedContext = AskedContext()
    name_candidates: tuple[NameCandidate, ...] = ()
    english_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationRequest:
    """A question (analysed), its retrieved passages (best first) and their sentences (best first).

    ``background`` is the question's mean similarity to the other articles of the corpus: how
    much the best passage stands out from it measures how well the corpus covers the
    question (None: the corpus holds one article only).
    ``keywords`` group the Chinese corpus words each English word of the question may
    mean; ``unknown_names`` are names the corpus never mentions (see rag.index.lexicon);
    ``names`` are the places, organisations and people the question names, which the
    supporting passage must name too (rag.answer.entities). ``asked_date`` is the date the
    question is about (its analysis's, or the day of the event an "X当天" question names).
    ``evidence`` is what the gate chose (``rag.answer.evidence.choose``), set before any
    generator sees the request. ``comparison`` is set when the question compares when events
    happened (rag.answer.timeline), with each event's passages.
    """

    info: QuestionInfo
    passages: tuple[Passage, ...]
    sentences: tuple[ScoredSentence, ...]
    background: float | None = None
    keywords: tuple[tuple[str, ...], ...] = ()
    unknown_names: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    evidence: Choice | None = None
    comparison: Comparison | None = None
    asked_date: Ymd | None = None

    @property
    def question(self) -> str:
        """The question as searched."""
        return self.info.text
