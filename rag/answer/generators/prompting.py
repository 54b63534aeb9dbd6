"""What an LLM generator is asked, shared by every LLM backend (local llama.cpp, any
OpenAI-compatible server).

The prompt numbers the passages with their article titles, asks for an answer in the
question's language, short for factual questions, with ``[n]`` markers, and for a fixed
phrase (``NOT_FOUND``) when the passages do not hold the answer. What the model replies
is a draft: ``rag.answer.grounding`` checks it before any of it is released.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.answer.evidence import answer_span
from rag.answer.grounding import NOT_FOUND
from rag.config import Settings
from rag.lang.en import drafts as en_drafts
from rag.lang.zh import drafts as zh_drafts
from rag.types import GenerationRequest, ScoredSentence

# The last instruction: the language the answer must be in, by the question's language.
_ANSWER_IN = {"zh": zh_drafts.ANSWER_IN, "en": en_drafts.ANSWER_IN}


def system_prompt(language: str) -> str:
    """The instructions, ending with the language the answer must be in (the question's)."""
    language = _ANSWER_IN.get(language, _ANSWER_IN["en"])
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
    similar sentences in text order (0: the whole chunk), and up to ``candidates`` more that
    hold a span of the asked type (a figure with the asked unit, a date, a titled name), so
    that the model sees every figure it could pick, not only the one the similarity favours.
    ``hint`` adds the extractive evidence sentence as "most relevant", which the model
    follows when it is wrong.
    """

    passages: int = 3
    sentences: int = 2
    candidates: int = 0
    hint: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> PromptShape:
        return cls(settings.llm_passages, settings.llm_sentences, settings.llm_candidates, settings.llm_hint)


def passage_excerpt(
    request: GenerationRequest,
    rank: int,
    sentences: int,
    focus: ScoredSentence | None = None,
    candidates: int = 0,
    typed: frozenset[ScoredSentence] = frozenset(),
) -> str:
    """The part of a passage the model reads: its best sentences in text order (the focus sentence
    among them) and up to ``candidates`` more of the ``typed`` ones, or the whole chunk."""
    chunk = request.passages[rank].chunk
    if sentences <= 0:
        return chunk.text
    own = [s for s in request.sentences if s.passage_rank == rank]
    first = [focus] if focus is not None and focus.passage_rank == rank else []
    best = (first + [s for s in own if s != focus])[:sentences]
    best += [s for s in own if s in typed and s not in best][:candidates]
    if not best:
        return chunk.text
    return "……".join(s.text for s in sorted(best, key=lambda s: s.start))


def user_prompt(request: GenerationRequest, shape: PromptShape, focus: ScoredSentence | None = None) -> str:
    """The numbered passages (titles and excerpts), the sentence most likely to answer, then the question."""
    blocks = []
    typed: frozenset[ScoredSentence] = frozenset()
    if shape.candidates and shape.sentences:
        typed = frozenset(s for s in request.sentences if answer_span(request.info, s.text) is not None)
    for rank in range(min(shape.passages, len(request.passages))):
        chunk = request.passages[rank].chunk
        # The publication day tells the model which year 今年 and 去年 in the passage mean.
        heading = " ".join(part for part in (chunk.title, f"({chunk.published})" if chunk.published else "") if part)
        excerpt = passage_excerpt(request, rank, shape.sentences, focus, shape.candidates, typed)
        blocks.append(f"[{rank + 1}] {heading}\n{excerpt}" if heading else f"[{rank + 1}] {excerpt}")
    hint = ""
    if shape.hint and focus is not None and focus.passage_rank < shape.passages:
        hint = f"\n\nMost relevant sentence (passage [{focus.passage_rank + 1}]): {focus.text}"
    keywords = ", ".join(dict.fromkeys(group[0] for group in request.keywords if group))
    if keywords:
        # An English question's words in the passages' language (rag.index.lexicon): the small
        # model matches "recover wages" to 追回 ... 工资 far better with them.
        hint += f"\n\nThe question's key words in Chinese: {keywords}"
    return "Passages:\n\n" + "\n\n".join(blocks) + hint + f"\n\nQuestion: {request.question}"


def messages(request: GenerationRequest, shape: PromptShape | None = None) -> list[dict[str, str]]:
    """Chat messages for the request; the gate's evidence sentence is the prompt's focus."""
    focus = request.evidence.sentence if request.evidence is not None else None
    return [
        {"role": "system", "content": system_prompt(request.info.language)},
        {"role": "user", "content": user_prompt(request, shape or PromptShape(), focus)},
    ]
