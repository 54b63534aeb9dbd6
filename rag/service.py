"""Entry-point glue shared by the CLI, the HTTP app and the eval harness: settings -> objects."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from rag.answer.retrieval import Pipeline, RetrievalOptions
from rag.config import Settings
from rag.index.embedding import Embedder, SentenceTransformerEmbedder, resolve_model_path
from rag.index.snapshot import (
    check_compatible,
    load_snapshot,
)
from rag.index.store import StoreConfig
from rag.ingest.loaders import ReadOptions
from rag.ingest.ocr import make_ocr
from rag.ingest.scans import ScanLimits


def onnx_folder(cache_dir: Path, model_name: str, model_path: str) -> Path:
    """Where a model's ONNX export is kept: one folder per model name and location (a
    re-provisioned model in a new folder gets a new export)."""
    slug = re.sub(r"[^\w.-]+", "_", model_name).strip("_") or "model"
    digest = hashlib.sha256(f"{model_name}\n{model_path}".encode()).hexdigest()[:12]
    return cache_dir / "onnx" / f"{slug}-{digest}"


def make_embedder(settings: Settings) -> Embedder:
    """The configured embedder, loaded: the embeddings server when RAG_EMBEDDING_URL is set,
    else the local model (the embedded default is provisioned on first use)."""
    if settings.embedding_url:
        from rag.index.remote_embedding import RemoteEmbedder, e5_prompts

        query, passage = e5_prompts(settings.embedding_model)
        remote = RemoteEmbedder(
            settings.embedding_url,
            settings.embedding_model,
            settings.embedding_api_key,
            timeout_s=settings.openai_timeout_s,
            retries=settings.openai_retries,
            prompts=(
                query if settings.embedding_query_prompt is None else settings.embedding_query_prompt,
                passage if settings.embedding_passage_prompt is None else settings.embedding_passage_prompt,
            ),
        )
        remote.warm_up()
        return remote
    path = resolve_model_path(settings.embedding_model, settings.cache_dir)
    embedder = SentenceTransformerEmbedder(
        settings.embedding_model,
        path,
        settings.embedding_batch_size,
        settings.embedding_threads,
        query_runtime=settings.query_runtime,
        onnx_dir=onnx_folder(settings.cache_dir, settings.embedding_model, path),
        precision=settings.embedding_precision,
    )
    embedder.warm_up()
    return embedder


def read_options(settings: Settings) -> ReadOptions:
    """How files are read (RAG_OCR, RAG_MAX_*): the OCR engine is made here, its models load
    on the first scan. Page OCR results wait in ``<index>/.resume/ocr`` until indexed."""
    return ReadOptions(
        ocr=make_ocr(settings.ocr, settings.ocr_min_score),
        limits=ScanLimits(settings.max_pages, settings.max_image_pixels, settings.ocr_dpi),
        max_file_bytes=settings.max_file_bytes,
        ocr_cache=ocr_cache_folder(settings),
    )


def ocr_cache_folder(settings: Settings) -> Path:
    """Where page OCR results wait until their documents are indexed (beside the resume cache)."""
    return settings.index_dir / ".resume" / "ocr"


def store_config(settings: Settings) -> StoreConfig:
    """The store settings (RAG_STORE, RAG_MILVUS_*)."""
    return StoreConfig(
        settings.store,
        settings.milvus_uri,
        settings.milvus_token,
        settings.milvus_collection,
    )


def open_pipeline(settings: Settings, embedder: Embedder | None = None) -> Pipeline:
    """Load the index (checking it matches the embedding model) and build a pipeline."""
    snapshot = load_snapshot(settings.index_dir, store_config(settings))
    check_compatible(snapshot.manifest, settings.embedding_id, None)
    embedder = embedder or make_embedder(settings)
    check_compatible(snapshot.manifest, settings.embedding_id, embedder.dimension)
    return Pipeline(embedder, snapshot, retrieval_options(settings))


def retrieval_options(settings: Settings) -> RetrievalOptions:
    """The retrieval settings, with the reranker loaded when one is configured."""
    reranker = None
    if settings.reranker_model:
        from rag.index.rerank import CrossEncoderReranker

        reranker = CrossEncoderReranker(settings.reranker_model)
    return RetrievalOptions(
        retriever=settings.retriever,
        depth=settings.hybrid_depth,
        rrf_k=settings.rrf_k,
        lexical_weight=settings.lexical_weight,
        rerank_depth=settings.rerank_depth,
        reranker=reranker,
    )
