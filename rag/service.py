"""Entry-point glue shared by the CLI, the HTTP app and the eval harness: settings -> objects."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.embedding import Embedder, SentenceTransformerEmbedder, resolve_model_path
from rag.errors import IndexMissing
from rag.index import (
    Snapshot,
    check_compatible,
    has_lexical,
    load_manifest,
    load_snapshot,
    save_snapshot,
    writer_lock,
)
from rag.indexing import Progress, ResumeCache, UpdateStats, missing_under, update_snapshot
from rag.loaders import ReadOptions, load_paths
from rag.ocr import make_ocr
from rag.pipeline import Pipeline, RetrievalOptions
from rag.scans import OcrCache, ScanLimits
from rag.store import StoreConfig
from rag.types import Document


@dataclass(frozen=True)
class IndexResult:
    """An index run: what changed, which files failed, where the version was written."""

    stats: UpdateStats
    failed: tuple[tuple[str, str], ...]
    version: Path | None


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
        from rag.remote_embedding import RemoteEmbedder, e5_prompts

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


def _existing(settings: Settings, rebuild: bool) -> Snapshot | None:
    if rebuild:
        return None
    try:
        snapshot = load_snapshot(settings.index_dir, store_config(settings))
    except IndexMissing:
        return None
    check_compatible(snapshot.manifest, settings.embedding_id, None)
    return snapshot


def index_documents(
    settings: Settings,
    documents: list[Document],
    embedder: Embedder,
    drop: Callable[[Snapshot | None], set[str]] = lambda _: set(),
    rebuild: bool = False,
    progress: Progress | None = None,
) -> tuple[UpdateStats, Path | None]:
    """Add or replace documents, drop those ``drop`` picks from the old index, save atomically.

    Vectors are kept as they are made (rag.indexing.ResumeCache), so a build that is
    interrupted and run again embeds only what it had not reached."""
    resume = ResumeCache(
        settings.index_dir / ".resume", settings.embedding_id, settings.chunk_size, settings.chunk_overlap
    )
    with writer_lock(settings.index_dir):
        old = _existing(settings, rebuild)
        if old is not None:
            check_compatible(old.manifest, settings.embedding_id, embedder.dimension)
        gone = drop(old)
        snapshot, stats = update_snapshot(
            old,
            documents,
            embedder,
            settings.chunk_size,
            settings.chunk_overlap,
            drop=gone,
            lexicon_words=settings.lexicon_words,
            stores=store_config(settings),
            index_dir=settings.index_dir,
            progress=progress,
            resume=resume,
        )
        # A version written before the keyword index existed is rewritten once to persist it.
        changed = (
            stats.added
            or stats.updated
            or stats.removed
            or old is None
            or old.store.kind != settings.store
            or not has_lexical(settings.index_dir)
        )
        if changed and progress is not None:
            progress("writing the index", 0, 0)
        version = save_snapshot(snapshot, settings.index_dir) if changed else None
        OcrCache(ocr_cache_folder(settings)).forget({doc.content_hash for doc in documents})
        resume.forget(documents)
    return stats, version


def index_paths(
    settings: Settings,
    paths: list[Path],
    embedder: Embedder,
    rebuild: bool = False,
    progress: Progress | None = None,
    options: ReadOptions | None = None,
) -> IndexResult:
    """Add new and changed files under ``paths``, drop deleted ones, save atomically. Files
    the index holds as they are now are not read again (a folder of scans is not OCR'd twice)."""
    if progress is not None:
        progress("reading files", 0, 0)
    known: dict[str, str] = {}
    if not rebuild:
        with contextlib.suppress(IndexMissing):
            known = dict(load_manifest(settings.index_dir).document_hashes)
    report = load_paths(paths, options or read_options(settings), known, progress)
    found = [d.doc_id for d in report.documents] + list(report.unchanged)
    stats, version = index_documents(
        settings,
        list(report.documents),
        embedder,
        drop=lambda old: missing_under(old, paths, found),
        rebuild=rebuild,
        progress=progress,
    )
    return IndexResult(stats, report.failed, version)


def open_pipeline(settings: Settings, embedder: Embedder | None = None) -> Pipeline:
    """Load the index (checking it matches the embedding model) and build a pipeline."""
    snapshot = load_snapshot(settings.index_dir, store_config(settings))
    check_compatible(snapshot.manifest, settings.embedding_id, None)
    embedder = embedder or make_embedder(settings)
    check_compatible(snapshot.manifest, settings.embedding_id, embedder.dimension)
    return Pipeline(embedder, snapshot, settings.max_question_chars, retrieval_options(settings))


def retrieval_options(settings: Settings) -> RetrievalOptions:
    """The retrieval settings, with the reranker loaded when one is configured."""
    reranker = None
    if settings.reranker_model:
        from rag.rerank import CrossEncoderReranker

        reranker = CrossEncoderReranker(settings.reranker_model)
    return RetrievalOptions(
        retriever=settings.retriever,
        depth=settings.hybrid_depth,
        rrf_k=settings.rrf_k,
        lexical_weight=settings.lexical_weight,
        rerank_depth=settings.rerank_depth,
        reranker=reranker,
    )
