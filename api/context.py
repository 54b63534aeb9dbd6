"""What travels with a request through the server: its id (``X-Request-ID``), read by the
error bodies (api.errors) and the log lines (api.observability)."""

from __future__ import annotations

import contextvars

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
