"""The HTTP service (FastAPI). It depends on ``rag``; ``rag`` never imports it."""
