"""What every request passes before a route sees it: Host, origin, content type, size and
keys; and the headers every response carries.

Without keys (the default) the service is meant for this machine: it answers only to
loopback host names (a web page cannot reach it through DNS rebinding) and refuses a
state-changing request that a browser sends from another origin, or with a body type that
a cross-site form can send. With keys, a read key asks and lists, a read-write key also
uploads and deletes.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# The page and its files hold no data: the page asks for the key and sends it itself.
# Probes need no key (a load balancer or kubelet has none); /metrics does (a read key is enough).
OPEN_PATHS = frozenset({"/api/health", "/api/health/live", "/api/health/ready", "/"})
OPEN_PREFIXES = ("/static/",)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UPLOAD_PATH = "/api/documents"

# The page loads only its own files and talks only to this server; nothing may frame it.
_CSP = (
    # blob: for the scanned pages the page fetches with its API key and shows (api/static/app.js).
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Swagger UI starts itself with an inline script.
_DOCS_CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " + (
    "img-src 'self' data:; frame-ancestors 'none'"
)
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def key_accepted(header: str, keys: frozenset[str]) -> bool:
    """Is ``Authorization: Bearer <key>`` one of the keys? Compared in constant time."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return any(hmac.compare_digest(token.strip().encode(), key.encode()) for key in keys)


def host_name(host_header: str) -> str:
    """``example.org`` of ``example.org:8000``, ``::1`` of ``[::1]:8000``, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass(frozen=True)
class Policy:
    """Who may do what: ``hosts`` served (empty: any), read-write and read-only keys (none: open)."""

    hosts: frozenset[str]
    write_keys: frozenset[str]
    read_keys: frozenset[str]
    max_body_bytes: int
    max_upload_bytes: int

    @property
    def keyed(self) -> bool:
        return bool(self.write_keys or self.read_keys)

    def body_limit(self, path: str) -> int:
        """The largest request body for a path: an upload's limit (and room for its form), or the general one."""
        return self.max_upload_bytes + 64 * 1024 if path == _UPLOAD_PATH else self.max_body_bytes


async def _refuse(send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Pure ASGI middleware (streams pass through untouched) enforcing a ``Policy``."""

    def __init__(self, app: App, policy: Policy) -> None:
        self._app = app
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = [*_HEADERS, (b"content-security-policy", (_DOCS_CSP if path == "/docs" else _CSP).encode())]
        refusal = self._check(scope)
        if refusal is not None:
            status, code, message = refusal
            auth = [(b"www-authenticate", b"Bearer")] if status == 401 else []
            await _refuse(send, status, code, message, extra + auth)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self._app(scope, self._counted(scope, receive), send_with_headers)

    def _check(self, scope: Scope) -> tuple[int, str, str] | None:
        policy = self._policy
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = host_name(headers.get("host", ""))
        if policy.hosts and host not in policy.hosts:
            return 421, "unknown_host", "this server does not answer to that host name (RAG_ALLOWED_HOSTS)"
        method: str = scope["method"]
        path: str = scope["path"]
        if method not in _SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and not _same_origin(origin, headers.get("host", "")):
                return 403, "cross_origin", "requests that change or cost something must come from this server's page"
            if (problem := self._content_type(headers, path)) is not None:
                return 415, "unsupported_media_type", problem
            limit = policy.body_limit(path)
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                return 413, "request_too_large", f"the request body is {length} bytes; the limit is {limit}"
        if policy.keyed and not (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)):
            authorization = headers.get("authorization", "")
            if key_accepted(authorization, policy.write_keys):
                return None
            if not key_accepted(authorization, policy.read_keys):
                return (
                    401,
                    "unauthorized",
                    "send Authorization: Bearer <key> (one of RAG_API_KEYS or RAG_READ_API_KEYS)",
                )
            if path.startswith(_UPLOAD_PATH) and method not in _SAFE_METHODS:
                return 403, "read_only_key", "this key may ask and list; uploads and deletes need one of RAG_API_KEYS"
        return None

    @staticmethod
    def _content_type(headers: dict[str, str], path: str) -> str | None:
        """A body must be JSON (or a multipart upload): the types a cross-site form can send
        without the page's consent (text/plain, url-encoded, multipart elsewhere) are refused."""
        length = headers.get("content-length")
        if length == "0" or (length is None and "transfer-encoding" not in headers):
            return None
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media == "application/json" or media.endswith("+json"):
            return None
        if media == "multipart/form-data" and path == _UPLOAD_PATH:
            return None
        return f"send the body as application/json{' or multipart/form-data' if path == _UPLOAD_PATH else ''}"

    def _counted(self, scope: Scope, receive: Receive) -> Receive:
        """A body sent without Content-Length is cut off at the limit too."""
        limit = self._policy.body_limit(scope["path"])
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"the request body is over {limit} bytes")
            return message

        return counted


def _same_origin(origin: str, host_header: str) -> bool:
    """Is the page that sent the request served by this host (``Origin: null`` is not)?"""
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == host_header.strip().lower()
