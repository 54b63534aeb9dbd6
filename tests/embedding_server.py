"""An OpenAI-compatible embeddings server over this project's own embedders, run as a real
process on loopback: what RAG_EMBEDDING_URL talks to in the tests.

``python -m tests.embedding_server --port N --model hash-64 [--fail-first 2] [--token T]``
``python -m tests.embedding_server --port N --model default --cache-dir DIR``

``POST /v1/embeddings`` embeds ``input`` (a string or a list) as given, with no prompt, and
returns the vectors scaled by 3 (a client must normalise them). ``--fail-first K`` answers
the first K requests with 503; ``--token`` wants that bearer token. ``GET /stats`` tells how
many requests and texts came, and the first few texts as sent.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rag.index.embedding import HashEmbedder, SentenceTransformerEmbedder
from tests.fake_llm_server import JsonHandler


def _embedder(model: str, cache_dir: str) -> HashEmbedder | SentenceTransformerEmbedder:
    if model.startswith("hash-"):
        return HashEmbedder(int(model.removeprefix("hash-")))
    from rag.config import Settings
    from rag.service import make_embedder

    embedder = make_embedder(Settings(cache_dir=Path(cache_dir)))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    return embedder


def make_handler(model: str, cache_dir: str, fail_first: int, token: str) -> type[BaseHTTPRequestHandler]:
    embedder = _embedder(model, cache_dir)
    stats: dict[str, Any] = {"requests": 0, "texts": 0, "first_texts": []}

    class Handler(JsonHandler):
        def do_GET(self) -> None:
            self._json(200, stats if self.path.endswith("/stats") else {"object": "list", "data": [{"id": model}]})

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            stats["requests"] += 1
            if token and self.headers.get("Authorization") != f"Bearer {token}":
                self._json(401, {"error": {"message": "bad token"}})
                return
            if stats["requests"] <= fail_first:
                self._json(503, {"error": {"message": "warming up"}})
                return
            texts = [request["input"]] if isinstance(request["input"], str) else list(request["input"])
            stats["texts"] += len(texts)
            stats["first_texts"] = (stats["first_texts"] + texts)[:8]
            vectors = embedder.embed_terms(texts) * 3.0  # raw text, no prompt: as a server embeds
            data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
            data.reverse()  # the index field, not the order, says which text a vector is for
            usage = {"prompt_tokens": sum(map(len, texts)), "total_tokens": sum(map(len, texts))}
            self._json(200, {"object": "list", "data": data, "model": request.get("model", model), "usage": usage})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="hash-64", help="hash-N, or default (the embedded e5-small)")
    parser.add_argument("--cache-dir", default="", help="where the default model is provisioned")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    handler = make_handler(args.model, args.cache_dir, args.fail_first, args.token)
    ThreadingHTTPServer(("127.0.0.1", args.port), handler).serve_forever()


if __name__ == "__main__":
    main()
