"""Request and response models of the HTTP API (Pydantic only at this edge)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from rag.config import MAX_TOP_K
from rag.index.store import Where
from rag.text import unsafe_in_name
from rag.types import Answer


class Message(BaseModel):
    """One turn of an earlier conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system"]
    content: str = Field(description="limits: RAG_MAX_HISTORY_CHARS")


class AskRequest(BaseModel):
    """POST /api/ask and /api/ask/stream. With ``history``, a follow-up question is made
    standalone from the earlier turns before retrieval (``rag.answer.conversation``)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="the question, in any language")
    top_k: StrictInt | None = Field(
        default=None, ge=1, le=MAX_TOP_K, description="passages to retrieve (default: RAG_TOP_K)"
    )
    generator: str | None = Field(default=None, description="answer generator (default: RAG_GENERATOR)")
    retriever: Literal["dense", "lexical", "hybrid"] | None = Field(
        default=None, description="chunk retrieval mode (default: RAG_RETRIEVER)"
    )
    as_of: date | None = Field(
        default=None,
        description="YYYY-MM-DD that relative dates in the question (去年, 上个月) count from; default today",
    )
    history: list[Message] = Field(
        default_factory=list, description="earlier turns, oldest first (the last RAG_MAX_HISTORY_TURNS are read)"
    )
    documents: list[str] | None = Field(
        default=None, max_length=1000, description="search only these documents (ids from GET /api/documents)"
    )
    published_from: date | None = Field(default=None, description="search only documents published on or after")
    published_to: date | None = Field(default=None, description="search only documents published on or before")

    @field_validator("documents")
    @classmethod
    def _plain_ids(cls, ids: list[str] | None) -> list[str] | None:
        """Document ids are names: a control, bidirectional or zero-width character is refused
        here (one reached the Milvus filter and came back as 503 and a page of traceback)."""
        for doc_id in ids or ():
            if len(doc_id) > 1024 or unsafe_in_name(doc_id) >= 0:
                raise ValueError(f"{doc_id[:80]!r} is not a document id (GET /api/documents lists them)")
        return ids

    def where(self) -> Where | None:
        """The filter the request asks for, if any."""
        return Where.of(self.documents, self.published_from, self.published_to)


class RegionModel(BaseModel):
    """Where a span of the cleaned text is printed on a scan's page (fractions of the page)."""

    start: int
    end: int
    page: int = Field(description="1-based page; GET /api/documents/{doc_id}/pages/{page} shows it")
    box: list[float] = Field(description="left, top, right, bottom as fractions of the page's width and height")


class CitationModel(BaseModel):
    """A passage the answer used, located in its cleaned document (and, for a scan, on its pages)."""

    doc_id: str
    title: str
    chunk_id: str
    text: str
    score: float
    start: int
    end: int
    evidence_start: int
    evidence_end: int
    published: str = Field(default="", description="its document's publication day, YYYY-MM-DD; empty when unknown")
    page: int = Field(default=0, description="the scan page the evidence is printed on; 0 when not a scan")
    regions: list[RegionModel] = Field(
        default_factory=list,
        description="the printed lines of the passage on its scan; those overlapping evidence_start..evidence_end "
        "print the evidence",
    )


class UsageModel(BaseModel):
    """Tokens the language model read and wrote for the answer (and the follow-up rewrite)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AskResponse(BaseModel):
    """The answer, whether the service abstained (and why), its citations and timings.

    ``answer`` is verified text whose ``[n]`` markers refer to ``citations`` (an abstention
    is the fixed not-found text, never a withheld draft).
    """

    answer: str
    abstained: bool
    abstain_reason: str
    evidence: str
    citations: list[CitationModel]
    timings_ms: dict[str, float]
    warnings: list[str] = Field(default_factory=list, description="e.g. the LLM server was unreachable")
    standalone_question: str = Field(default="", description="the question as retrieved, after the conversation")
    usage: UsageModel = Field(description="language-model tokens (zero for the extractive generator)")

    @classmethod
    def from_answer(cls, answer: Answer, standalone_question: str = "") -> AskResponse:
        return cls.model_validate({**answer.as_json(), "standalone_question": standalone_question})


class Health(BaseModel):
    """Liveness and readiness."""

    status: Literal["ok", "not ready"]
    ready: bool
    detail: str
    documents: int
    chunks: int
    embedding_model: str
    store: str = Field(description="where the index's chunks are searched: embedded or milvus")
    generator: str
    generators: list[str]


class IndexStatus(BaseModel):
    """The index update running now (uploads and deletes run one at a time)."""

    busy: bool
    document: str = Field(description="the file being indexed or removed (the last one once idle)")
    stage: str = Field(
        description="starting, embedding chunks, adding new words to the lexicon, indexing vectors and keywords, "
        "writing the index, loading the new index, or removing (a delete); empty when idle"
    )
    done: int = Field(description="new chunks embedded so far")
    total: int = Field(description="new chunks to embed (0 while it is not known)")
    elapsed_s: float
    queued: int = Field(description="updates running or waiting, this one included")
    documents: int = Field(default=0, description="documents the index being served holds (the newest version)")
    version: str = Field(default="", description="the index version being served")


class ErrorBody(BaseModel):
    """Every error response: a machine-readable code and a message that says what to do."""

    error: str
    message: str


class TextDocument(BaseModel):
    """A document sent as JSON text instead of a file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="file name; its extension picks the parser")
    text: str = Field(min_length=1)
    published: date | None = Field(
        default=None, description="publication day; default: from the file name or the text's dateline"
    )


class DocumentInfo(BaseModel):
    """An indexed document."""

    doc_id: str
    source: str
    characters: int
    chunks: int
    titles: list[str]
    published: str = Field(default="", description="publication day, YYYY-MM-DD; empty when unknown")
    pages: int = Field(
        default=0, description="pages of a scan (an image or a PDF read by OCR), shown by /pages/{n}; 0: not a scan"
    )


class DocumentList(BaseModel):
    documents: list[DocumentInfo]
