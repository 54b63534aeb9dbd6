"""Document management: list, upload (file or JSON text), delete; the index follows."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.deps import StateDep
from api.errors import DocumentNotFound, InvalidBody, UploadTooLarge
from api.schemas import DocumentInfo, DocumentList, ErrorBody, TextDocument
from api.state import AppState
from rag.errors import LoaderError, RagError
from rag.loaders import SUPPORTED_SUFFIXES, doc_id_for, parse_bytes
from rag.pipeline import Pipeline
from rag.service import index_documents, open_pipeline

router = APIRouter(tags=["documents"])

_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (404, 413, 415, 422, 503)}
_SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


def safe_filename(name: str) -> str:
    """A plain file name: no folders, no leading dots, only word characters, dots and dashes.

    ``../../etc/passwd`` becomes ``passwd``; uploads can never leave the documents folder.
    """
    base = Path(name.replace("\\\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).lstrip("._")
    if not cleaned or not Path(cleaned).suffix:
        raise LoaderError(f"{name!r} is not a usable file name; give it one of: {', '.join(SUPPORTED_SUFFIXES)}")
    return cleaned[:200]


def _info(pipeline: Pipeline | None, doc_id: str) -> DocumentInfo:
    assert pipeline is not None
    snapshot = pipeline.snapshot
    doc = snapshot.documents[doc_id]
    return DocumentInfo(
        doc_id=doc.doc_id,
        source=Path(doc.source).name,
        characters=len(doc.text),
        chunks=sum(1 for c in snapshot.chunks if c.doc_id == doc_id),
        titles=[a.title for a in doc.articles],
    )


@router.get("/api/documents", response_model=DocumentList)
def list_documents(state: StateDep) -> DocumentList:
    """Every indexed document (an empty list before the first index)."""
    pipeline = state.pipeline
    ids = sorted(pipeline.snapshot.documents) if pipeline else []
    return DocumentList(documents=[_info(pipeline, doc_id) for doc_id in ids])


def _reload(state: AppState) -> None:
    assert state.embedder is not None
    pipeline = open_pipeline(state.settings, state.embedder)
    pipeline.warm_up()
    state.pipeline, state.not_ready = pipeline, ""


def _write_atomically(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".upload-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        target = folder / name
        os.replace(tmp, target)
        return target
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def _read_upload(request: Request, limit: int) -> tuple[str, bytes]:
    """(file name, bytes) from a multipart ``file`` field or a JSON ``{"name", "text"}`` body."""
    length = int(request.headers.get("content-length") or 0)
    if length > limit + 64 * 1024:
        raise UploadTooLarge(f"the upload is {length} bytes; the limit is {limit} (RAG_MAX_UPLOAD_BYTES)")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form() as form:  # closes the spooled upload files
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise LoaderError("send the document as a multipart field named 'file'")
            data = await upload.read(limit + 1)
            name = upload.filename or ""
    else:
        try:
            body = TextDocument.model_validate_json(await request.body())
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            raise InvalidBody(f"send a file as multipart field 'file', or JSON {{name, text}}: {problems}") from exc
        data, name = body.text.encode("utf-8"), body.name
    if len(data) > limit:
        raise UploadTooLarge(f"the upload is over {limit} bytes (RAG_MAX_UPLOAD_BYTES)")
    return name, data


@router.post(
    "/api/documents",
    status_code=201,
    response_model=DocumentInfo,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                },
                "application/json": {"schema": TextDocument.model_json_schema()},
            }
        }
    },
)
async def upload_document(request: Request, state: StateDep) -> DocumentInfo:
    """Add or replace a document: parsed first, then saved and indexed, or nothing changes."""
    name, data = await _read_upload(request, state.settings.max_upload_bytes)
    # Parsing and embedding are CPU work: off the event loop, so other requests go on.
    return await run_in_threadpool(_store_and_index, state, safe_filename(name), data)


def _store_and_index(state: AppState, filename: str, data: bytes) -> DocumentInfo:
    folder = state.settings.documents_dir
    doc_id = doc_id_for(folder / filename, folder)
    document = parse_bytes(data, doc_id, str((folder / filename).resolve()))  # 415/422 before anything is written
    with state.writer:
        if state.embedder is None:
            raise RagError("no embedding model is loaded")
        previous = (folder / filename).read_bytes() if (folder / filename).exists() else None
        path = _write_atomically(folder, filename, data)
        try:
            index_documents(state.settings, [document], state.embedder)
        except BaseException:
            # The index kept its last good version: put the folder back the way it was.
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                _write_atomically(folder, filename, previous)
            raise
        _reload(state)
    return _info(state.pipeline, doc_id)


@router.delete("/api/documents/{doc_id:path}", status_code=204, responses=_ERRORS)
def delete_document(doc_id: str, state: StateDep) -> JSONResponse:
    """Remove a document from the index (and its uploaded file)."""
    with state.writer:
        pipeline = state.pipeline
        if pipeline is None or doc_id not in pipeline.snapshot.documents:
            raise DocumentNotFound(f"no document {doc_id!r}; GET /api/documents lists them")
        assert state.embedder is not None
        source = Path(pipeline.snapshot.documents[doc_id].source)
        index_documents(state.settings, [], state.embedder, drop=lambda _: {doc_id})
        folder = state.settings.documents_dir.resolve()
        if source.is_relative_to(folder):
            source.unlink(missing_ok=True)
        _reload(state)
    return JSONResponse(None, status_code=204)
