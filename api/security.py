"""Optional bearer-token authentication (RAG_API_KEYS): every endpoint but health and the page."""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

# The page and its files hold no data: the page asks for the key and sends it itself.
OPEN_PATHS = frozenset({"/api/health", "/"})
OPEN_PREFIXES = ("/static/",)


def key_accepted(header: str, keys: frozenset[str]) -> bool:
    """Is ``Authorization: Bearer <key>`` one of the keys? Compared in constant time."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return any(hmac.compare_digest(token.strip().encode(), key.encode()) for key in keys)


class ApiKeyMiddleware(BaseHTTPMiddleware):
    """401 with a JSON body for a missing or wrong key, when keys are configured."""

    def __init__(self, app: object, keys: frozenset[str]) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self._keys = keys

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        open_path = path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
        if open_path or key_accepted(request.headers.get("authorization", ""), self._keys):
            return await call_next(request)
        return JSONResponse(
            {"error": "unauthorized", "message": "send Authorization: Bearer <key> (one of RAG_API_KEYS)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
