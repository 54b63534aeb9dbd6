"""``rag serve``: run the HTTP service with uvicorn (registered through ``rag.commands``)."""

from __future__ import annotations

import argparse

from rag.config import Settings


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Start uvicorn on the app; models load once at start-up."""
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``serve`` to the ``rag`` command line."""
    parser = commands.add_parser("serve", help="run the HTTP service (index with `rag index` first)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info")
    parser.set_defaults(handler=serve)
