"""What an LLM generator is asked, shared by every LLM backend (local llama.cpp, any
OpenAI-compatible server).

The prompt numbers the passages with their article titles, asks for an answer in the
question's language, short for factual questions, with ``[n]`` markers, and for a fixed
phrase (``NOT_FOUND``) when the passages do not hold the answer. What the model replies
is a draft: ``rag.grounding`` checks it before any of it is released.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.grounding import NOT_FOUND
from rag.types import GenerationRequest, ScoredSentence

_CJK = re.compile(r"[\u3400-\u9fff]")


def is_chinese(text: str) -> bool:
    """Whether a question is written in Chinese (any CJK character)."""
    return bool(_CJK.search(text))


def system_prompt(question: str) -> str:
    """The instructions, ending with the language the answer must be in."""
    language = (
        "请用中文回答。" if is_chinese(question) else "Answer in English, even though the passages are in Chinese."
    )
    return (
        "You answer questions about news articles using only the numbered passages the user gives. "
        "Give the answer in one short sentence: for a question about a number, date, person or place, "
        "state it directly. After each fact, cite the passage it comes from as [1], [2], ... "
        f"If the passages do not contain the answer, reply with exactly {NOT_FOUND} and nothing else. "
        f"{language}"
    )


@dataclass(frozen=True)
class PromptShape:
    """How much of the retrieved text the model reads.

    A small model on two CPU cores reads about 40 to 50 prompt tokens a second, so whole
    chunks of five passages (about 1,500 tokens) cost 25 s before the first word. The
    prompt therefore holds, for each of the best ``passages``, its ``sentences`` most
    similar sentences in text order (0: the whole chunk).
    """

    passages: int = 3
    sentences: int = 2


def passage_excerpt(request: GenerationRequest, rank: int, sentences: int, focus: ScoredSentence | None = None) -> str:
    """The part of a passage the model reads: its best sentences in text order (the focus sentence
    among them), or the whole chunk."""
    chunk = request.passages[rank].chunk
    if sentences <= 0:
        return chunk.text
    own = [s for s in request.sentences if s.passage_rank == rank]
    first = [focus] if focus is not None and focus.passage_rank == rank else []
    best = (first + [s for s in own if s != focus])[:sentences]
    if not best:
        return chunk.text
    return "……".join(s.text for s in sorted(best, key=lambda s: s.start))


def user_prompt(request: GenerationRequest, shape: PromptShape, focus: ScoredSentence | None = None) -> str:
    """The numbered passages (titles and excerpts), the sentence most likely to answer, then the question."""
    blocks = []
    for rank in range(min(shape.passages, len(request.passages))):
        chunk = request.passages[rank].chunk
        # The publication day tells the model which year 今年 and 去年 in the passage mean.
        heading = " ".join(part for part in (chunk.title, f"({chunk.published})" if chunk.published else "") if part)
        excerpt = passage_excerpt(request, rank, shape.sentences, focus)
        blocks.append(f"[{rank + 1}] {heading}\n{excerpt}" if heading else f"[{rank + 1}] {excerpt}")
    hint = ""
    if focus is not None and focus.passage_rank < shape.passages:
        hint = f"\n\nMost relevant sentence (passage [{focus.passage_rank + 1}]): {focus.text}"
    keywords = ", ".join(dict.fromkeys(group[0] for group in request.keywords if group))
    if keywords:
        # An English question's words in the passages' language (rag.lexicon): the small
        # model matches "recover wages" to 追回 ... 工资 far better with them.
        hint += f"\n\nThe question's key words in Chinese: {keywords}"
    return "Passages:\n\n" + "\n\n".join(blocks) + hint + f"\n\nQuestion: {request.question}"


def messages(request: GenerationRequest, shape: PromptShape | None = None) -> list[dict[str, str]]:
    """Chat messages for the request; the gate's evidence sentence is the prompt's focus."""
    focus = request.evidence.sentence if request.evidence is not None else None
    return [
        {"role": "system", "content": system_prompt(request.question)},
        {"role": "user", "content": user_prompt(request, shape or PromptShape(), focus)},
    ]
