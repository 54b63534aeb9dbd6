"""An optional cross-encoder reranker (sentence-transformers ``CrossEncoder``).

Off by default: no Chinese reranker weights can be obtained offline here. A user who
can download one sets ``RAG_RERANKER_MODEL`` (a local folder or a hub name such as
``BAAI/bge-reranker-v2-m3``); the pipeline then reorders the ``RAG_RERANK_DEPTH`` best
chunks by its scores before keeping the top k.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rag.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


class CrossEncoderReranker:
    """Scores (question, passage) pairs with a cross-encoder loaded once."""

    def __init__(self, model: str, max_length: int = 512) -> None:
        from sentence_transformers import CrossEncoder

        try:
            self._model: CrossEncoder = CrossEncoder(model, max_length=max_length, device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the reranker {model!r}: {exc}") from exc

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        raw = self._model.predict([(question, p) for p in passages], show_progress_bar=False)
        return [float(s) for s in raw]
