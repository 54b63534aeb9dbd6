"""``extractive``: the gate's evidence as the answer, with no model.

The gate (``rag.answer.evidence.choose``) has already picked the best sentence of the retrieved
passages and cut the short typed span out of it (``386 名``); the draft is that span,
citing the sentence's passage. It is answered in about a millisecond.
"""

from __future__ import annotations

from rag.answer.generators.base import Call, DraftStream
from rag.errors import GeneratorError
from rag.types import GenerationRequest


def evidence_draft(request: GenerationRequest) -> str:
    """The gate's answer span with a marker for the passage of its sentence: ``386 名 [2]``."""
    if request.evidence is None:
        raise GeneratorError("the request was not gated: no evidence was chosen")
    if request.evidence.draft:
        return request.evidence.answer  # a computed answer with its own markers (rag.answer.timeline)
    return f"{request.evidence.answer} [{request.evidence.sentence.passage_rank + 1}]"


class ExtractiveGenerator:
    """Answers with a span of the best evidence sentence."""

    @property
    def name(self) -> str:
        return "extractive"

    def stream(self, request: GenerationRequest, call: Call) -> DraftStream:
        yield evidence_draft(request)
