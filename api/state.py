"""What the app holds while it runs: the loaded pipeline, or why it is not ready."""

from __future__ import annotations

from dataclasses import dataclass

from rag.config import Settings
from rag.pipeline import Pipeline


@dataclass
class AppState:
    """Lifespan state: built once at start-up, read by every request."""

    settings: Settings
    pipeline: Pipeline | None
    not_ready: str = ""
