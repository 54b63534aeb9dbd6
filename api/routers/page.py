"""GET /: the chat page. Its script and style are served from /static by the app itself."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["page"])


@router.get("/", include_in_schema=False)
def chat_page() -> FileResponse:
    """The single-page chat client (no CDN: everything it loads comes from this app)."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
