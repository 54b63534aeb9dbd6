"""One place that turns errors into HTTP responses with a JSON body, never a stack trace."""

from __future__ import annotations

import logging
import re
import traceback
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.context import request_id
from rag.errors import (
    Busy,
    DocumentChanged,
    DocumentExists,
    DocumentNotFound,
    GeneratorError,
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
    Interrupted,
    InvalidQuestion,
    LoaderError,
    ModelError,
    ParseLimitExceeded,
    RagError,
    StoreUnavailable,
    UnsupportedFileType,
)

logger = logging.getLogger(__name__)
UNEXPECTED = "the server hit an unexpected error; see its log (this request's id is in it)"


class UploadTooLarge(RagError):
    """The upload is over RAG_MAX_UPLOAD_BYTES."""


class InvalidBody(RagError):
    """A request body the route parses itself is malformed."""


# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[RagError], int, str], ...] = (
    (DocumentNotFound, 404, "document_not_found"),
    (DocumentExists, 409, "document_exists"),
    (DocumentChanged, 409, "document_changed"),
    (Busy, 503, "busy"),
    (Interrupted, 499, "client_closed_request"),
    (UploadTooLarge, 413, "upload_too_large"),
    (InvalidBody, 422, "invalid_request"),
    (InvalidQuestion, 422, "invalid_question"),
    (GeneratorError, 422, "invalid_generator"),
    (UnsupportedFileType, 415, "unsupported_file_type"),
    (ParseLimitExceeded, 422, "parse_limit_exceeded"),
    (LoaderError, 422, "unreadable_document"),
    (IndexMissing, 503, "index_not_ready"),
    (IndexCorrupt, 503, "index_corrupt"),
    (IndexMismatch, 503, "index_mismatch"),
    (StoreUnavailable, 503, "store_unavailable"),
    (ModelError, 503, "model_unavailable"),
)


def status_for(exc: RagError) -> tuple[int, str]:
    """HTTP status and error code of a library (or API) error."""
    return next(((status, code) for cls, status, code in _STATUS if isinstance(exc, cls)), (400, "bad_request"))


# The folders of an absolute path (``/srv/rag/documents/a.pdf``): a client is told the file
# name, never where the server keeps it. The service's own routes (/api/..., /v1/...) stay.
_FOLDERS = re.compile(r"(?<![\w.:/])/(?!api/|v1/)(?:[^\s/'\"]+/)+")


def public(message: str) -> str:
    """A message as a client may read it: absolute paths shortened to their last part."""
    return _FOLDERS.sub("", message)


def error_response(code: str, message: str, status: int, request: Request | None = None) -> JSONResponse:
    """An error as the client expects it (OpenAI's shape on /v1), with the request's id; any
    absolute path in the message is cut to its file name (``public``)."""
    message = public(message)
    rid = request_id.get()  # the same id is in the X-Request-ID header and the log lines
    if request is not None and request.url.path.startswith("/v1/"):
        # OpenAI clients read {"error": {"message", "type", "code"}}.
        error = {"message": message, "type": "invalid_request_error" if status < 500 else "server_error"}
        return JSONResponse({"error": {**error, "code": code, "param": None, "request_id": rid}}, status_code=status)
    return JSONResponse({"error": code, "message": message, "request_id": rid}, status_code=status)


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        status, code = status_for(exc)
        response = error_response(code, str(exc), status, request)
        if isinstance(exc, Busy):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return error_response("invalid_request", "; ".join(problems) or "invalid request", 422, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response("http_error", str(exc.detail), exc.status_code, request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log_unexpected(logger, exc)
        return error_response("internal_error", UNEXPECTED, 500, request)


def log_unexpected(log: logging.Logger, exc: BaseException) -> None:
    """An unexpected error's traceback, once per 10 s for each kind and place (the log config's
    rate limit keys on this message); a flood of one failure is one traceback and a count."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    log.error(f"unexpected error: {type(exc).__name__}{where}", exc_info=exc)
