"""Document management: list, upload (file or JSON text), delete; the index follows."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from pydantic import ValidationError

from api.deps import StateDep
from api.errors import InvalidBody, UploadTooLarge
from api.schemas import DocumentInfo, DocumentList, ErrorBody, IndexStatus, TextDocument
from api.state import AppState
from rag.answer.retrieval import Pipeline
from rag.errors import DocumentChanged, DocumentNotFound, LoaderError, RagError
from rag.ingest.sandbox import run_isolated
from rag.ingest.scans import indexed_page_image
from rag.text import invalid_character

router = APIRouter(tags=["documents"])

_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (404, 413, 415, 422, 503)}


def _info(pipeline: Pipeline | None, doc_id: str) -> DocumentInfo:
    assert pipeline is not None
    snapshot = pipeline.snapshot
    doc = snapshot.documents[doc_id]
    return DocumentInfo(
        doc_id=doc.doc_id,
        source=Path(doc.source).name,
        characters=len(doc.text),
        chunks=snapshot.chunk_counts.get(doc_id, 0),
        titles=[a.title for a in doc.articles],
        published=doc.published,
        pages=doc.pages,
    )


@router.get("/api/documents", response_model=DocumentList)
def list_documents(state: StateDep) -> DocumentList:
    """Every indexed document (an empty list before the first index), of the newest version."""
    state.catch_up()
    pipeline = state.pipeline
    ids = sorted(pipeline.snapshot.documents) if pipeline else []
    return DocumentList(documents=[_info(pipeline, doc_id) for doc_id in ids])


@contextlib.contextmanager
def _changing(state: AppState, what: str) -> Iterator[None]:
    """One upload or delete: the library held across ``rag serve --workers`` processes, the
    newest index version loaded first (another worker may have written it), its progress shown,
    and the new version loaded once the change is saved."""
    with state.library.writing():
        state.reload_if_changed()
        state.progress.start(what)
        try:
            yield
            state.progress.update("loading the new index", 0, 0)
            state.reload(only_if_newer=True)  # a request may have loaded it already
        finally:
            state.progress.finish()


async def _read_upload(request: Request, limit: int) -> tuple[str, bytes, str]:
    """(file name, bytes, publication day) from a multipart ``file`` field (and an optional
    ``published`` field) or a JSON ``{"name", "text", "published"?}`` body."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form() as form:  # closes the spooled upload files
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise LoaderError("send the document as a multipart field named 'file'")
            data = await upload.read(limit + 1)
            name = upload.filename or ""
            published = _day(form.get("published"))
    else:
        try:
            body = TextDocument.model_validate_json(await request.body())
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            raise InvalidBody(f"send a file as multipart field 'file', or JSON {{name, text}}: {problems}") from exc
        if (at := invalid_character(body.text)) >= 0:
            raise LoaderError(f"the text has an invalid character at position {at} (a lone surrogate); send UTF-8")
        data, name = body.text.encode("utf-8"), body.name
        published = body.published.isoformat() if body.published else ""
    if len(data) > limit:
        raise UploadTooLarge(f"the upload is over {limit} bytes (RAG_MAX_UPLOAD_BYTES)")
    return name, data, published


def _day(value: object) -> str:
    """A form's ``published`` field as YYYY-MM-DD ('' when absent)."""
    if not value or not isinstance(value, str):
        return ""
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError as exc:
        raise InvalidBody(f"published must be a YYYY-MM-DD date, not {value!r}") from exc


@router.post(
    "/api/documents",
    status_code=201,
    response_model=DocumentInfo,
    responses={**_ERRORS, 409: {"model": ErrorBody}},
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
async def upload_document(request: Request, state: StateDep, replace: bool = False) -> DocumentInfo:
    """Add a document (``replace=true`` to replace one of the same name: 409 otherwise).

    Parsed first, then saved and indexed together, or nothing changes; a client that goes
    away while it waits or is indexed stops it. At most RAG_MAX_PENDING_WRITES uploads and
    deletes wait; more get 503 with Retry-After.
    """
    name, data, published = await _read_upload(request, state.settings.max_upload_bytes)
    library = state.library
    # The file is read before the request queues for a write, in a process of its own within
    # the parse limits (RAG_PARSE_*), a bounded number at a time: 415/422 cost no write slot.
    # A scan, whose OCR takes seconds a page, is read in its write turn (progress is shown).
    upload = await state.parses.run(lambda stop: library.check(name, data, published, stop), request)

    def job(stop: threading.Event) -> DocumentInfo:
        if state.embedder is None:
            raise RagError("no embedding model is loaded")
        with _changing(state, upload.filename):
            library.add(upload, state.embedder, replace, state.progress.update, stop)
        return _info(state.pipeline, upload.doc_id)

    return await state.writes.run(job, request)


@router.get(
    "/api/documents/{doc_id:path}/pages/{page}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **_ERRORS, 409: {"model": ErrorBody}},
)
async def page_image(
    doc_id: str,
    request: Request,
    state: StateDep,
    number: Annotated[str, PathParam(alias="page", pattern=r"^[1-9][0-9]{0,5}$", description="1-based page number")],
) -> Response:
    """A page of a scanned document as a JPEG (at most 2,000 pixels a side): a citation's
    ``regions`` are boxes on it, as fractions of its width and height. Rendered once (then
    kept, a few at a time), with an ``ETag``: a client that has it gets 304."""
    page = int(number)  # plain digits only: 1.0, +1 and 01 are refused (422)
    pipeline = state.pipeline
    document = pipeline.snapshot.documents.get(doc_id) if pipeline else None
    if document is None:
        raise DocumentNotFound(f"no document {doc_id!r}; GET /api/documents lists them")
    if not 1 <= page <= document.pages:
        raise DocumentNotFound(f"{doc_id} has no page {page} (it has {document.pages}; 0 when it is not a scan)")
    source = Path(document.source)
    try:
        stat = source.stat()
    except OSError as exc:
        raise DocumentChanged(f"{doc_id}: its file is gone ({exc.strerror}); index it again") from exc
    etag = f'"{document.content_hash[:20]}-{page}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    library = state.library
    # Read, checked against the index and rendered in a reading process (within the parse
    # limits), so that a large page's decoding never grows the server.
    args = (str(source), doc_id, document.content_hash, page, library.reading.limits)
    image = await state.pages.get(
        etag,
        (stat.st_size, stat.st_mtime_ns),
        lambda: run_isolated(indexed_page_image, args, library.parse_limits, source.name),
    )
    if etag in (tag.strip() for tag in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    return Response(image, media_type="image/jpeg", headers=headers)


@router.get("/api/index/status", response_model=IndexStatus)
async def index_status(state: StateDep) -> IndexStatus:
    """How far the running upload or delete is (in whichever ``rag serve`` process runs it): the
    page polls this while a file is indexed. Also what the newest index holds."""
    await asyncio.to_thread(state.catch_up)
    pipeline = state.pipeline
    documents = len(pipeline.snapshot.documents) if pipeline else 0
    return IndexStatus(
        **state.progress.status(), queued=state.writes.admitted, documents=documents, version=state.version
    )


@router.delete("/api/documents/{doc_id:path}", status_code=204, responses=_ERRORS)
async def delete_document(doc_id: str, request: Request, state: StateDep) -> Response:
    """Remove a document from the index (and its uploaded file)."""
    library = state.library

    def job(stop: threading.Event) -> None:
        assert state.embedder is not None
        with _changing(state, doc_id):
            pipeline = state.pipeline
            documents = pipeline.snapshot.documents if pipeline else {}
            library.delete(doc_id, documents, state.embedder, state.progress.update, stop)

    await state.writes.run(job, request)
    return Response(status_code=204)
