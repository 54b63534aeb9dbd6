"""What the clients of OpenAI-compatible servers share (the ``openai`` generator and the
embeddings server of ``RAG_EMBEDDING_URL``)."""

from __future__ import annotations

# Answers worth asking again: timeouts, conflicts, rate limits and server errors.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
